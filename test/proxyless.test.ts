// Proxyless routing: each environment's client dials its route's destination itself, with no proxy
// between; read back from each server directly.
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection, createPool } from '@picop/mysql';
import { Pool } from '@picop/pg';
import { withEnvId } from '@picop/propagator';
import { createAdminServer, createProxy } from '@picop/proxy';
import { Redis } from '@picop/redis';
import amqplib from 'amqplib';
import { Redis as IORedis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inBoth } from './support/environments.js';
import { useContextManager } from './support/otel-and-tls.js';
import { runId } from './support/run-id.js';
import {
  AMQP_URL,
  type ExtraServer,
  MQTT_PORT,
  MYSQL_PORT,
  PG_PORT,
  REDIS_PORT,
  startMariadb,
  startMosquitto,
  startPostgres,
  startRabbitmq,
  startRedis,
} from './support/servers.js';

useContextManager();
const run = `picop-proxyless-${runId()}`;
const local = (port: number) => `127.0.0.1:${port}`;
const routesOf = (redis: Redis) => {
  const routes = redis.pools?.routes;
  if (routes === undefined) throw new Error('no routes');
  return routes;
};

describe('proxyless routing', () => {
  const servers: ExtraServer[] = [];
  let redis2: ExtraServer;
  let redis3: ExtraServer;
  const direct = new Map<number, IORedis>();
  /** Where `key` is, among the baseline's Redis and the extra ones. */
  const whereIs = async (key: string) => {
    const found: string[] = [];
    for (const [name, port] of [
      ['main', REDIS_PORT],
      ['r2', redis2.port],
      ['r3', redis3.port],
    ] as const) {
      let client = direct.get(port);
      if (client === undefined) {
        client = new IORedis({ host: '127.0.0.1', port });
        direct.set(port, client);
      }
      if ((await client.exists(key)) === 1) found.push(name);
    }
    return found.join('+') || 'nowhere';
  };

  beforeAll(async () => {
    [redis2, redis3] = await Promise.all([startRedis(), startRedis()]);
    servers.push(redis2, redis3);
  });
  afterAll(async () => {
    for (const c of direct.values()) c.disconnect();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('redis: each environment straight to its route, the others to the client’s own address', async () => {
    const redis = new Redis({
      host: '127.0.0.1',
      port: REDIS_PORT,
      picop: { routes: { table: { 'feature-1': local(redis2.port) } } },
    });
    try {
      await inBoth((env) => redis.set(`${run}:table:${env}`, env));
      await withEnvId('feature-9', () => redis.set(`${run}:table:feature-9`, 'x'));
      expect(await whereIs(`${run}:table:feature-1`)).toBe('r2');
      expect(await whereIs(`${run}:table:main`)).toBe('main');
      expect(await whereIs(`${run}:table:feature-9`)).toBe('main');
    } finally {
      redis.disconnect();
    }
  });

  it('a route with `header: true` goes to a PiCoP-aware destination (a proxy) with the header', async () => {
    const proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: local(REDIS_PORT),
      routes: { 'feature-2': local(redis3.port) },
    });
    const { port } = await proxy.listen();
    const redis = new Redis({
      host: '127.0.0.1',
      port: REDIS_PORT,
      picop: {
        routes: {
          table: {
            'feature-1': local(redis2.port),
            'feature-2': { destination: local(port), header: true },
          },
        },
      },
    });
    try {
      await withEnvId('feature-2', () => redis.set(`${run}:header`, 'x'));
      expect(await whereIs(`${run}:header`)).toBe('r3');
    } finally {
      redis.disconnect();
      await proxy.close(100);
    }
  });

  it('a routes file: a change reroutes new work, and a command in flight finishes where it is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'picop-routes-'));
    const file = join(dir, 'routes.json');
    writeFileSync(file, JSON.stringify({ 'feature-1': local(redis2.port) }));
    const redis = new Redis({ host: '127.0.0.1', port: REDIS_PORT, picop: { routes: { file } } });
    try {
      await withEnvId('feature-1', () => redis.set(`${run}:file:before`, 'x'));
      // A blocking pop in flight on feature-1's connection to r2.
      const popped = withEnvId('feature-1', () => redis.blpop(`${run}:file:list`, 10));
      // The Go reference's list format; swapped in with a rename, as an editor or a ConfigMap does.
      const changed = once(routesOf(redis), 'change');
      await writeFile(
        `${file}.new`,
        JSON.stringify([{ env_id: 'feature-1', destination: local(redis3.port) }]),
      );
      await rename(`${file}.new`, file);
      await changed;
      await withEnvId('feature-1', () => redis.set(`${run}:file:after`, 'x'));
      expect(await whereIs(`${run}:file:before`)).toBe('r2');
      expect(await whereIs(`${run}:file:after`)).toBe('r3');
      await direct.get(redis2.port)?.rpush(`${run}:file:list`, 'v');
      expect(await popped).toEqual([`${run}:file:list`, 'v']);
      // A bad file keeps the last good routes, and counts.
      const failed = once(routesOf(redis), 'error');
      await writeFile(file, '{not json');
      await failed;
      await withEnvId('feature-1', () => redis.set(`${run}:file:kept`, 'x'));
      expect(await whereIs(`${run}:file:kept`)).toBe('r3');
      expect(redis.pools?.routes?.failures).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a proxy’s admin URL: unread routes fail with a code, then its routes and their changes apply', async () => {
    const proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: local(REDIS_PORT),
      routes: { 'feature-1': local(redis2.port) },
    });
    const admin = createAdminServer(proxy, { token: 't0ken' });
    await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(admin.address() as net.AddressInfo).port}`;
    const redis = new Redis({
      host: '127.0.0.1',
      port: REDIS_PORT,
      picop: { routes: { url, token: 't0ken', pollIntervalMs: 50 } },
    });
    const routes = routesOf(redis);
    try {
      // Not read yet: the environment's work fails; the baseline's does not need routes.
      await expect(
        withEnvId('feature-1', () => redis.set(`${run}:url:early`, 'x')),
      ).rejects.toMatchObject({
        code: 'ERR_PICOP_INVALID_STATE',
      });
      await redis.set(`${run}:url:baseline`, 'x');
      if (!routes.loaded) await once(routes, 'change');
      await withEnvId('feature-1', () => redis.set(`${run}:url:first`, 'x'));
      expect(await whereIs(`${run}:url:first`)).toBe('r2');
      const changed = once(routes, 'change');
      proxy.routes.set('feature-1', local(redis3.port));
      await changed;
      await withEnvId('feature-1', () => redis.set(`${run}:url:second`, 'x'));
      expect(await whereIs(`${run}:url:second`)).toBe('r3');
      // The admin API goes away: the last routes stay, and the failures are counted.
      const failed = once(routes, 'error');
      admin.close();
      admin.closeAllConnections();
      await failed;
      await withEnvId('feature-1', () => redis.set(`${run}:url:kept`, 'x'));
      expect(await whereIs(`${run}:url:kept`)).toBe('r3');
    } finally {
      redis.disconnect();
      admin.close();
      await proxy.close(100);
    }
  });

  it('mysql and pg: each environment’s pool straight to its own server', async () => {
    const [maria2, pg2] = await Promise.all([startMariadb(), startPostgres()]);
    servers.push(maria2, pg2);
    const table = run.replace(/-/g, '_');
    const login = { host: '127.0.0.1', user: 'root', password: '', database: 'test' };
    for (const port of [MYSQL_PORT, maria2.port]) {
      const c = await mysql.createConnection({ ...login, port });
      await c.query(`CREATE TABLE IF NOT EXISTS ${table} (env VARCHAR(32))`);
      await c.end();
    }
    const pgLogin = { host: '127.0.0.1', user: 'postgres', database: 'postgres' };
    for (const port of [PG_PORT, pg2.port]) {
      const c = new pg.Client({ ...pgLogin, port });
      await c.connect();
      await c.query(`CREATE TABLE IF NOT EXISTS ${table} (env text)`);
      await c.end();
    }
    const pool = createPool({
      ...login,
      port: MYSQL_PORT,
      picop: { routes: { table: { 'feature-1': local(maria2.port) } } },
    });
    const pgPool = new Pool({
      ...pgLogin,
      port: PG_PORT,
      picop: { routes: { table: { 'feature-1': local(pg2.port) } } },
    });
    try {
      // One connection too: feature-1's reads its route once.
      const single = await withEnvId('feature-1', () =>
        createConnection({
          ...login,
          port: MYSQL_PORT,
          picop: { routes: { table: { 'feature-1': local(maria2.port) } } },
        }),
      );
      await single.query(`INSERT INTO ${table} VALUES ('single')`);
      await single.end();
      await inBoth((env) => pool.query(`INSERT INTO ${table} VALUES (?)`, [env]));
      await inBoth((env) => pgPool.query(`INSERT INTO ${table} VALUES ($1)`, [env]));
      const mysqlRows = async (port: number) => {
        const c = await mysql.createConnection({ ...login, port });
        const [rows] = await c.query(`SELECT env FROM ${table}`);
        await c.query(`DROP TABLE ${table}`);
        await c.end();
        return (rows as Array<{ env: string }>).map((r) => r.env);
      };
      const pgRows = async (port: number) => {
        const c = new pg.Client({ ...pgLogin, port });
        await c.connect();
        const { rows } = await c.query(`SELECT env FROM ${table}`);
        await c.query(`DROP TABLE ${table}`);
        await c.end();
        return rows.map((r) => r.env);
      };
      expect([(await mysqlRows(maria2.port)).sort(), await mysqlRows(MYSQL_PORT)]).toEqual([
        ['feature-1', 'single'],
        ['main'],
      ]);
      expect([await pgRows(pg2.port), await pgRows(PG_PORT)]).toEqual([['feature-1'], ['main']]);
    } finally {
      await pool.end();
      await pgPool.end();
    }
  }, 120_000);

  it('bad routes are ERR_PICOP_INVALID_ARG; clients that cannot route yet say so', async () => {
    const invalid = { code: 'ERR_PICOP_INVALID_ARG' };
    expect(
      () => new Redis({ lazyConnect: true, picop: { routes: { table: { 'feature-1': 'nope' } } } }),
    ).toThrow(expect.objectContaining(invalid));
    expect(
      () => new Redis({ lazyConnect: true, picop: { routes: { table: {}, file: '/x' } } }),
    ).toThrow(expect.objectContaining(invalid));
    const { Client } = await import('@picop/pg');
    // One connection reads its routes once: an admin URL, read later, is for pools.
    expect(() => new Client({ picop: { routes: { url: 'http://127.0.0.1:1' } } })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_UNSUPPORTED' }),
    );
  });
});

describe('proxyless routing of the brokers', () => {
  it('mqtt: feature-1’s messages straight to its own broker, the others to the client’s own', async () => {
    const { connectAsync } = await import('@picop/mqtt');
    const { Observer } = await import('../packages/mqtt/test/helpers.js');
    const second = await startMosquitto();
    const topic = `${run}/mqtt`;
    const onMain = await Observer.start(MQTT_PORT, `${topic}/#`);
    const onSecond = await Observer.start(second.port, `${topic}/#`);
    const client = await connectAsync(`mqtt://127.0.0.1:${MQTT_PORT}`, {
      protocolVersion: 5,
      picop: { routes: { table: { 'feature-1': local(second.port) } } },
    });
    try {
      await inBoth((env) => client.publishAsync(`${topic}/${env}`, env, { qos: 1 }));
      expect((await onSecond.take(topic, 1)).map((s) => [s.payload, s.envId])).toEqual([
        ['feature-1', 'feature-1'],
      ]);
      expect((await onMain.take(topic, 1)).map((s) => [s.payload, s.envId])).toEqual([
        ['main', undefined],
      ]);
    } finally {
      await client.endAsync();
      await Promise.all([onMain.stop(), onSecond.stop()]);
      await second.stop();
    }
  });

  it('amqp: feature-1’s connection straight to its own broker', async () => {
    const { connect } = await import('@picop/amqp');
    const second = await startRabbitmq();
    const queue = `${run}-amqp`;
    const conn = await connect(AMQP_URL, {
      picop: { routes: { table: { 'feature-1': local(second.port) } } },
    });
    const brokers = await Promise.all(
      [AMQP_URL, `amqp://guest:guest@127.0.0.1:${second.port}`].map((u) => amqplib.connect(u)),
    );
    try {
      const channels = await Promise.all(brokers.map((b) => b.createChannel()));
      for (const ch of channels) await ch.assertQueue(queue);
      const ch = await conn.createChannel();
      await inBoth(async (env) => ch.sendToQueue(queue, Buffer.from(env)));
      await ch.close();
      const got = async (c: (typeof channels)[number]) => {
        for (;;) {
          const msg = await c.get(queue, { noAck: true });
          if (msg) return msg.content.toString();
        }
      };
      expect([await got(channels[0]!), await got(channels[1]!)]).toEqual(['main', 'feature-1']);
      for (const c of channels) await c.deleteQueue(queue);
    } finally {
      await conn.close();
      for (const b of brokers) await b.close();
      await second.stop();
    }
  }, 180_000);
});

describe('the http agent', () => {
  it('routes a listed origin per environment; refuses isolate', async () => {
    const { createAgent } = await import('@picop/net-wrap');
    const { default: http } = await import('node:http');
    const servers = await Promise.all(
      ['B[main]', 'B[feature-1]'].map(async (name) => {
        const server = http.createServer((_req, res) => res.end(name));
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        return server;
      }),
    );
    const [main, feature1] = servers.map((s) => local((s.address() as net.AddressInfo).port));
    const agent = createAgent({
      routes: { [`http://${main}`]: { table: { 'feature-1': feature1 as string } } },
    });
    const get = (envId?: string) => {
      const call = () =>
        new Promise<string>((resolve, reject) => {
          http
            .get(`http://${main}/`, { agent }, (res) => {
              let body = '';
              res.on('data', (d) => (body += d)).on('end', () => resolve(body));
            })
            .on('error', reject);
        });
      return envId === undefined ? call() : withEnvId(envId, call);
    };
    try {
      expect(await get('feature-1')).toBe('B[feature-1]');
      expect(await get()).toBe('B[main]');
      expect(await get('feature-9')).toBe('B[main]');
      expect(() => createAgent(JSON.parse('{ "isolate": {} }'))).toThrow(
        expect.objectContaining({ code: 'ERR_PICOP_UNSUPPORTED' }),
      );
    } finally {
      agent.destroy();
      for (const s of servers) {
        s.closeAllConnections();
        s.close();
      }
    }
  });
});

describe('a worker’s own Env-Id (picop.envId) with routes and isolation', () => {
  it('its work takes its route and its isolation, never the baseline’s', async () => {
    const second = await startRedis();
    const direct = new IORedis({ host: '127.0.0.1', port: second.port });
    const main = new IORedis({ host: '127.0.0.1', port: REDIS_PORT });
    const routed = new Redis({
      host: '127.0.0.1',
      port: REDIS_PORT,
      picop: { envId: 'feature-1', routes: { table: { 'feature-1': local(second.port) } } },
    });
    const isolated = new Redis({
      host: '127.0.0.1',
      port: REDIS_PORT,
      picop: { envId: 'feature-1', isolate: { keyPrefix: true } },
    });
    try {
      await routed.set(`${run}:worker`, 'x');
      await isolated.set(`${run}:worker`, 'y');
      expect(await direct.get(`${run}:worker`)).toBe('x');
      expect(await main.get(`picop-env:feature-1:${run}:worker`)).toBe('y');
      expect(await main.exists(`${run}:worker`)).toBe(0);
      await main.del(`picop-env:feature-1:${run}:worker`);
    } finally {
      for (const c of [routed, isolated, direct, main]) c.disconnect();
      await second.stop();
    }
  });
});
