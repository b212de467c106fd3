// PicopGuard with the real instrumentations (ioredis, pg, mysql2, undici, http) in a NodeSDK, in a
// child process (the instrumentations patch the libraries as they are required): the same
// operations through @picop clients (behind picop-proxy) and through plain clients, in feature-1
// and in the baseline. The plain ones in feature-1, and only they, are flagged.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MYSQL_PORT, PG_PORT, REDIS_PORT } from './support/servers.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const script = (mode: string, sdk: string) => `
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { CompositePropagator, W3CTraceContextPropagator } = require('@opentelemetry/core');
const { MetricReader } = require('@opentelemetry/sdk-metrics');
const { IORedisInstrumentation } = require('@opentelemetry/instrumentation-ioredis');
const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg');
const { MySQL2Instrumentation } = require('@opentelemetry/instrumentation-mysql2');
const { UndiciInstrumentation } = require('@opentelemetry/instrumentation-undici');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { AmqplibInstrumentation } = require('@opentelemetry/instrumentation-amqplib');
const { RedisInstrumentation } = require('@opentelemetry/instrumentation-redis');
const { EnvIdPropagator, PicopGuard, withEnvId } = require('@picop/propagator');
class Reader extends MetricReader { async onForceFlush() {} async onShutdown() {} }
const reader = new Reader();
const guard = new PicopGuard({ mode: '${mode}' });
const warnings = [];
process.on('warning', (w) => { if (w.name === 'PicopWarning') warnings.push(w.code); });
const propagator = new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new EnvIdPropagator()] });
${sdk}
const { trace } = require('@opentelemetry/api');
const http = require('node:http');
const IORedis = require('ioredis');
const pg = require('pg');
const mysql = require('mysql2/promise');
const undici = require('undici');
const { createProxy } = require('@picop/proxy');
const { Redis } = require('@picop/redis');
const picopPg = require('@picop/pg');
const picopMysql = require('@picop/mysql');
const { createDispatcher } = require('@picop/fetch');
const { createAgent, perEnvironment } = require('@picop/net-wrap');
const amqplib = require('amqplib');
const picopAmqp = require('@picop/amqp');
const knex = require('knex');
const { Sequelize } = require('sequelize');
const pgp = require('pg-promise')();
const nodeRedis = require('redis');
const picopNodeRedis = require('@picop/node-redis');

// How a case ended, and whether the guard flagged anything while it ran.
const outcome = async (fn) => {
  const before = guard.unrouted.length;
  let result = 'ok';
  try { await fn(); } catch (e) { result = e.code ?? e.message; }
  return guard.unrouted.length > before ? result + ' flagged' : result;
};
const get = (url, options) => new Promise((resolve, reject) =>
  http.get(url, options, (res) => res.resume().on('end', resolve)).on('error', reject));

(async () => {
  const proxies = [];
  const proxied = async (destination) => {
    const proxy = createProxy({ listen: '127.0.0.1:0', defaultRoute: destination });
    proxies.push(proxy);
    return (await proxy.listen()).port;
  };
  const server = http.createServer((req, res) => res.end('ok'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = 'http://127.0.0.1:' + server.address().port + '/';
  const pgConfig = { host: '127.0.0.1', user: 'postgres', database: 'postgres' };
  const mysqlConfig = { host: '127.0.0.1', user: 'root', database: 'test' };
  const sequelizeConfig = { dialect: 'postgres', host: '127.0.0.1', username: 'postgres', database: 'postgres', logging: false };
  const pgProxy = await proxied('127.0.0.1:${PG_PORT}');
  const amqpProxy = await proxied('127.0.0.1:5672');
  const wrapped = {
    amqp: await (await picopAmqp.connect('amqp://guest:guest@127.0.0.1:' + amqpProxy)).createChannel(),
    knex: perEnvironment((env) => knex({ client: 'pg', connection: { ...pgConfig, port: pgProxy, stream: picopPg.pgStream(env) } }), { destroy: (k) => k.destroy() }),
    sequelize: perEnvironment((env) => new Sequelize({ ...sequelizeConfig, port: pgProxy, dialectOptions: { stream: picopPg.pgStream(env) } }), { destroy: (s) => s.close() }),
    'pg-promise': perEnvironment((env) => pgp({ ...pgConfig, port: pgProxy, stream: picopPg.pgStream(env) }, env.envId ?? 'baseline'), { destroy: (db) => db.$pool.end() }),
    redis: new Redis({ host: '127.0.0.1', port: await proxied('127.0.0.1:${REDIS_PORT}') }),
    'node-redis': await picopNodeRedis.createClient({ url: 'redis://127.0.0.1:' + await proxied('127.0.0.1:${REDIS_PORT}') }).connect(),
    pg: new picopPg.Pool({ ...pgConfig, port: pgProxy }),
    mysql: picopMysql.createPool({ ...mysqlConfig, port: await proxied('127.0.0.1:${MYSQL_PORT}') }),
  };
  const plain = {
    amqp: await (await amqplib.connect('amqp://guest:guest@127.0.0.1:5672')).createChannel(),
    knex: knex({ client: 'pg', connection: { ...pgConfig, port: ${PG_PORT} } }),
    sequelize: new Sequelize({ ...sequelizeConfig, port: ${PG_PORT} }),
    'pg-promise': pgp({ ...pgConfig, port: ${PG_PORT} }, 'plain'),
    redis: new IORedis({ host: '127.0.0.1', port: ${REDIS_PORT} }),
    'node-redis': await nodeRedis.createClient({ url: 'redis://127.0.0.1:${REDIS_PORT}' }).connect(),
    pg: new pg.Pool({ ...pgConfig, port: ${PG_PORT} }),
    mysql: mysql.createPool({ ...mysqlConfig, port: ${MYSQL_PORT} }),
  };
  // This HTTP server is not a PiCoP origin: its requests go out plain, routed on purpose.
  const dispatcher = createDispatcher({ picop: { origins: ['*.svc.cluster.local'] } });
  const agent = createAgent({ origins: ['*.svc.cluster.local'] });
  const idioms = {
    'redis GET': (c) => c.get('picop-guard'),
    'redis pipeline': (c) => c.pipeline().get('picop-guard').exec(),
    'redis multi': (c) => c.multi().get('picop-guard').exec(),
    'node-redis GET': (c) => c.get('picop-guard'),
    'node-redis multi': (c) => c.multi().get('picop-guard').exec(),
    'pg query': (c) => c.query('SELECT 1'),
    'pg transaction': async (c) => {
      const client = await c.connect();
      try { await client.query('BEGIN'); await client.query('SELECT 1'); await client.query('COMMIT'); }
      finally { client.release(); }
    },
    'amqp sendToQueue': (c) => c.sendToQueue('picop-guard-nowhere', Buffer.from('x')),
    // Awaited inside the environment: a knex builder runs where it is awaited.
    'knex raw': async (c) => { await c.raw('SELECT 1'); },
    'sequelize query': (c) => c.query('SELECT 1'),
    'pg-promise one': (c) => c.one('SELECT 1 AS x'),
    'mysql query': (c) => c.query('SELECT 1'),
    'mysql execute': (c) => c.execute('SELECT ?', [1]),
    'mysql connection': async (c) => {
      const connection = await c.getConnection();
      try { await connection.query('SELECT 1'); } finally { connection.release(); }
    },
  };
  const results = {};
  await trace.getTracer('test').startActiveSpan('request', async (span) => {
    for (const env of ['feature-1', 'main']) {
      const inEnv = (fn) => (env === 'main' ? fn() : withEnvId(env, fn));
      for (const [idiom, run] of Object.entries(idioms)) {
        const store = idiom.split(' ')[0];
        for (const [kind, clients] of [['picop', wrapped], ['plain', plain]]) {
          results[env + ' ' + kind + ' ' + idiom] = await outcome(() => inEnv(() => run(clients[store])));
        }
      }
      results[env + ' picop undici'] = await outcome(() => inEnv(() => undici.request(url, { dispatcher }).then((r) => r.body.text())));
      results[env + ' plain undici'] = await outcome(() => inEnv(() => undici.request(url).then((r) => r.body.text())));
      results[env + ' picop http'] = await outcome(() => inEnv(() => get(url, { agent })));
      results[env + ' plain http'] = await outcome(() => inEnv(() => get(url, {})));
    }
    span.end();
  });
  const { resourceMetrics } = await reader.collect().catch(() => ({ resourceMetrics: { scopeMetrics: [] } }));
  const counted = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)
    .filter((m) => m.descriptor.name === 'picop.unrouted.operations')
    .flatMap((m) => m.dataPoints.map((d) => ({ ...d.attributes, value: d.value })));
  console.log(JSON.stringify({ results, warnings, unrouted: guard.unrouted, counted }));
  process.exit(0);
})().catch((err) => { console.log(JSON.stringify({ error: String(err.stack) })); process.exit(1); });
`;

const NODE_SDK = `new NodeSDK({
  spanProcessors: [guard, guard],
  metricReader: reader,
  textMapPropagator: propagator,
  logRecordProcessors: [],
  instrumentations: [new IORedisInstrumentation(), new PgInstrumentation(), new MySQL2Instrumentation(),
    new UndiciInstrumentation(), new HttpInstrumentation(), new AmqplibInstrumentation(),
    new RedisInstrumentation()],
}).start();`;

interface Report {
  results: Record<string, string>;
  warnings: string[];
  unrouted: Array<{ system: string; envId: string; instrumentation: string }>;
  counted: Array<{ system: string; env_id: string; value: number }>;
  error?: string;
}

/** Runs `code` in a child Node process at the repository's root; its last line of output, parsed. */
async function child<T>(code: string): Promise<T> {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', code], {
    cwd: root,
  }).catch((err) => err);
  return JSON.parse(stdout.trim().split('\n').pop() as string) as T;
}

async function run(mode: string, sdk = NODE_SDK): Promise<Report> {
  const report = await child<Report>(script(mode, sdk));
  expect(report.error).toBeUndefined();
  return report;
}

const PLAIN_IN_FEATURE = /^feature-1 plain /;
const SYSTEMS = ['http', 'mysql', 'postgresql', 'rabbitmq', 'redis'];

describe('PicopGuard', () => {
  it('warns once per system and environment and counts work no wrapper routed, nothing else', async () => {
    const { results, warnings, unrouted, counted } = await run('warn');
    for (const [name, result] of Object.entries(results)) {
      expect(result, name).toBe(PLAIN_IN_FEATURE.test(name) ? 'ok flagged' : 'ok');
    }
    // The guard is registered twice: still one warning per system in feature-1.
    expect(warnings.sort()).toEqual(SYSTEMS.map(() => 'PICOP_UNROUTED'));
    expect([...new Set(unrouted.map((u) => u.system))].sort()).toEqual(SYSTEMS);
    expect(unrouted.every((u) => u.envId === 'feature-1')).toBe(true);
    expect(unrouted.map((u) => u.instrumentation)).toEqual(
      expect.arrayContaining([
        '@opentelemetry/instrumentation-ioredis',
        '@opentelemetry/instrumentation-redis',
      ]),
    );
    expect([...new Set(counted.map((c) => c.system))].sort()).toEqual(SYSTEMS);
    for (const point of counted) {
      expect(point.env_id).toBe('feature-1');
      expect(point.value).toBeGreaterThan(0);
    }
  }, 60_000);

  it("mode 'throw' fails the unrouted operations, and only them", async () => {
    const { results, unrouted } = await run('throw');
    for (const [name, result] of Object.entries(results)) {
      // HTTP client spans are known at their end: recorded, not thrown.
      const fails = PLAIN_IN_FEATURE.test(name) && !/ (undici|http)$/.test(name);
      const flagged = PLAIN_IN_FEATURE.test(name) ? ' flagged' : '';
      expect(result, name).toBe(`${fails ? 'ERR_PICOP_UNROUTED' : 'ok'}${flagged}`);
    }
    expect(unrouted.filter((u) => u.system === 'http')).toHaveLength(2);
  }, 60_000);

  it('warns at the first span when the SDK lacks the Env-Id propagator or a context manager', async () => {
    const withoutPropagator = await run(
      'warn',
      NODE_SDK.replace('textMapPropagator: propagator,', ''),
    );
    expect(withoutPropagator.warnings).toContain('PICOP_NO_ENV_ID_PROPAGATOR');
    expect(withoutPropagator.warnings).not.toContain('PICOP_NO_CONTEXT_MANAGER');
    const withoutContextManager = await run(
      'warn',
      `const { BasicTracerProvider } = require('@opentelemetry/sdk-trace-base');
       const api = require('@opentelemetry/api');
       api.propagation.setGlobalPropagator(propagator);
       api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [guard] }));`,
    );
    expect(withoutContextManager.warnings).toContain('PICOP_NO_CONTEXT_MANAGER');
    expect(withoutContextManager.warnings).not.toContain('PICOP_NO_ENV_ID_PROPAGATOR');
  }, 60_000);

  it('warns at the first span for each client library loaded that no @picop package routes', async () => {
    const loaded = async (checkModules: boolean) => {
      return child<unknown>(
        `const { NodeSDK } = require('@opentelemetry/sdk-node');
          const { EnvIdPropagator, PicopGuard } = require('@picop/propagator');
          const warnings = [];
          process.on('warning', (w) => w.code === 'PICOP_UNROUTED_MODULE' && warnings.push(w.message.split(' ')[1]));
          new NodeSDK({ textMapPropagator: new EnvIdPropagator(),
            spanProcessors: [new PicopGuard({ checkModules: ${checkModules} })] }).start();
          require('ioredis'); require('knex'); require('@picop/pg');
          require('@opentelemetry/api').trace.getTracer('t').startSpan('first').end();
          setImmediate(() => console.log(JSON.stringify(warnings.sort())));`,
      );
    };
    // pg is loaded too, by @picop/pg: routed.
    expect(await loaded(true)).toEqual(['ioredis', 'knex']);
    expect(await loaded(false)).toEqual([]);
  }, 60_000);

  it('acceptPicop warns once when the HTTP instrumentation would lose the connection’s Env-Id', async () => {
    const served = async (propagators: string) => {
      return child<unknown>(
        `const { NodeSDK } = require('@opentelemetry/sdk-node');
          const { CompositePropagator, W3CTraceContextPropagator } = require('@opentelemetry/core');
          const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
          const { EnvIdPropagator, getEnvId, withEnvId } = require('@picop/propagator');
          const warnings = [];
          process.on('warning', (w) => w.name === 'PicopWarning' && warnings.push(w.code));
          new NodeSDK({ textMapPropagator: new CompositePropagator({ propagators: [${propagators}] }),
            instrumentations: [new HttpInstrumentation()] }).start();
          const http = require('node:http');
          const { acceptPicop, createAgent } = require('@picop/net-wrap');
          const server = acceptPicop(http.createServer((req, res) => res.end(getEnvId() ?? 'none')));
          server.listen(0, '127.0.0.1', () => {
            const agent = createAgent({ origins: '127.0.0.1' });
            const get = () => new Promise((resolve) => http.get({ host: '127.0.0.1', port: server.address().port, agent },
              (res) => { let body = ''; res.on('data', (d) => (body += d)).on('end', () => resolve(body)); }));
            withEnvId('feature-1', async () => {
              const handlers = [await get(), await get()];
              setImmediate(() => { console.log(JSON.stringify({ handlers, warnings })); process.exit(0); });
            });
          });`,
      );
    };
    expect(await served('new W3CTraceContextPropagator()')).toEqual({
      handlers: ['none', 'none'],
      warnings: ['PICOP_ENV_ID_LOST'],
    });
    expect(await served('new W3CTraceContextPropagator(), new EnvIdPropagator()')).toEqual({
      handlers: ['feature-1', 'feature-1'],
      warnings: [],
    });
  }, 60_000);

  it('warns at the first request naming an Env-Id that no HTTP instrumentation extracts', async () => {
    const warned = async (instrumentations: string, wrap: string) => {
      return child<unknown>(
        `const { NodeSDK } = require('@opentelemetry/sdk-node');
          const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
          const { EnvIdPropagator, PicopGuard } = require('@picop/propagator');
          const warnings = [];
          process.on('warning', (w) => w.name === 'PicopWarning' && warnings.push(w.code));
          new NodeSDK({ textMapPropagator: new EnvIdPropagator(), instrumentations: [${instrumentations}],
            spanProcessors: [new PicopGuard({ checkModules: false })] }).start();
          const http = require('node:http');
          const { acceptPicop, createAgent } = require('@picop/net-wrap');
          const server = ${wrap}(http.createServer((req, res) => res.end('ok')));
          server.listen(0, '127.0.0.1', () => {
            // An acceptPicop server reads the PiCoP header first: our agent sends it.
            const agent = ${wrap ? "createAgent({ origins: '127.0.0.1' })" : 'undefined'};
            http.get({ host: '127.0.0.1', port: server.address().port, agent, headers: { 'env-id': 'feature-1' } },
              (res) => res.resume().on('end', () => setImmediate(() => {
                console.log(JSON.stringify(warnings)); process.exit(0); })));
          });`,
      );
    };
    // What an ES module app without OpenTelemetry's loader hook gets: no instrumentation patched.
    expect(await warned('', '')).toEqual(['PICOP_HTTP_NOT_INSTRUMENTED']);
    expect(await warned('new HttpInstrumentation()', '')).toEqual([]);
    expect(await warned('', 'acceptPicop')).toEqual([]);
  }, 60_000);

  it('refuses an unknown mode', async () => {
    const { PicopGuard } = await import('@picop/propagator');
    expect(() => new PicopGuard({ mode: 'log' as 'warn' })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
  });
});
