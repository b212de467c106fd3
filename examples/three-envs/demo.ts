// Starts the paper's three environments on free loopback ports, sends one request per environment,
// finds where each request's work landed by reading every instance directly, and checks the result
// against the paper's Table I.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGateway, type PicopGateway } from '@picop/gateway';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { Redis as IORedis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { httpGet } from '../../test/support/http';
import {
  type ExtraServer,
  freePort,
  MQTT_PORT,
  PG_PORT,
  startMariadb,
  startPostgres,
  startRedis,
  waitForPort,
} from '../../test/support/servers';

interface Environments {
  baseline: string;
  requests: string[];
  instances: Record<'A' | 'B' | 'mysql' | 'postgres' | 'redis', string[]>;
}

export interface DemoRow {
  request: string;
  A: string;
  B: string;
  mysql: string;
  postgres: string;
  redis: string;
  consumer: string;
  mqtt: string;
}

export interface DemoResult {
  rows: DemoRow[];
  expected: DemoRow[];
  ok: boolean;
  /** Curl commands to try while it runs (`keep`). */
  tryThis: string[];
  stop: () => Promise<void>;
}

const CONFIG: Environments = JSON.parse(readFileSync(join(__dirname, 'environments.json'), 'utf8'));
const MAIN_MYSQL = { host: '127.0.0.1', port: Number(process.env.MYSQL_PORT ?? 3306) };
const MAIN_REDIS = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) };
const PG_LOGIN = { host: '127.0.0.1', user: 'postgres', database: 'postgres' };
const PG_TABLE = (table: string) =>
  `CREATE TABLE IF NOT EXISTS ${table} (request_id VARCHAR(64), env VARCHAR(64), served_by VARCHAR(64))`;
const AMQP = new URL(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');

/** Which instance of `component` serves `env`: its own if it has one, else the baseline's. */
const instanceFor = (component: keyof Environments['instances'], env: string) =>
  CONFIG.instances[component].includes(env) ? env : CONFIG.baseline;

/** What Table I says each request should reach. */
export function expectedTable(): DemoRow[] {
  return CONFIG.requests.map((env) => ({
    request: env,
    A: `A[${instanceFor('A', env)}]`,
    B: `B[${instanceFor('B', env)}]`,
    mysql: `C[${instanceFor('mysql', env)}]`,
    postgres: `PG[${instanceFor('postgres', env)}]`,
    redis: `Redis[${instanceFor('redis', env)}]`,
    consumer: `consumer[${CONFIG.baseline}] in ${env} -> Redis[${instanceFor('redis', env)}]`,
    mqtt: `consumer[${CONFIG.baseline}] in ${env} -> Redis[${instanceFor('redis', env)}]`,
  }));
}

export async function runDemo({ log = (_: string) => {} } = {}): Promise<DemoResult> {
  const run = `picop-demo-${Date.now().toString(36)}`;
  const table = run.replace(/-/g, '_');
  const extra: ExtraServer[] = [];
  const proxies: PicopProxy[] = [];
  let gateway: PicopGateway | undefined;
  const children: ChildProcess[] = [];
  const killChildren = () => {
    for (const c of children) c.kill('SIGTERM');
  };
  process.once('exit', killChildren);
  const stop = async () => {
    killChildren();
    await gateway?.close(200);
    await Promise.all(proxies.map((p) => p.close(200)));
    await Promise.all(extra.map((s) => s.stop()));
  };

  try {
    log('starting the data stores: C (MariaDB), PostgreSQL and Redis of the environments ...');
    const mysqlPorts: Record<string, number> = { [CONFIG.baseline]: MAIN_MYSQL.port };
    const pgPorts: Record<string, number> = { [CONFIG.baseline]: PG_PORT };
    const redisPorts: Record<string, number> = { [CONFIG.baseline]: MAIN_REDIS.port };
    await Promise.all([
      ...CONFIG.instances.mysql
        .filter((e) => e !== CONFIG.baseline)
        .map(async (env) => {
          const s = await startMariadb();
          extra.push(s);
          mysqlPorts[env] = s.port;
        }),
      ...CONFIG.instances.postgres
        .filter((e) => e !== CONFIG.baseline)
        .map(async (env) => {
          const s = await startPostgres();
          extra.push(s);
          pgPorts[env] = s.port;
        }),
      ...CONFIG.instances.redis
        .filter((e) => e !== CONFIG.baseline)
        .map(async (env) => {
          const s = await startRedis();
          extra.push(s);
          redisPorts[env] = s.port;
        }),
    ]);
    for (const port of Object.values(mysqlPorts)) {
      const conn = await mysql.createConnection({
        host: '127.0.0.1',
        port,
        user: 'root',
        password: '',
        database: 'test',
      });
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${table} (request_id VARCHAR(64), env VARCHAR(64), served_by VARCHAR(64))`,
      );
      await conn.end();
    }
    for (const port of Object.values(pgPorts)) {
      const client = new pg.Client({ ...PG_LOGIN, port });
      await client.connect();
      await client.query(PG_TABLE(table));
      await client.end();
    }

    // One proxy in front of each store and each service; routes from environments.json.
    const proxyFor = async (
      ports: Record<string, number>,
      options: { propagate?: boolean; header?: 'optional' } = {},
    ) => {
      const routes = Object.fromEntries(
        Object.entries(ports).map(([env, port]) => [env, `127.0.0.1:${port}`]),
      );
      const proxy = createProxy({
        listen: '127.0.0.1:0',
        defaultRoute: routes[CONFIG.baseline],
        routes,
        ...options,
      });
      proxies.push(proxy);
      return `127.0.0.1:${(await proxy.listen()).port}`;
    };
    const mysqlProxy = await proxyFor(mysqlPorts);
    const redisProxy = await proxyFor(redisPorts);
    const pgProxy = await proxyFor(pgPorts);
    // The brokers are shared by every environment: the Env-Id travels in each message.
    const amqpProxy = await proxyFor({ [CONFIG.baseline]: Number(AMQP.port || 5672) });
    const mqttProxy = await proxyFor({ [CONFIG.baseline]: MQTT_PORT });

    log('starting services A[main], A[feature-1], B[main], B[feature-2] and consumer[main] ...');
    const start = async (role: string, env: string, vars: Record<string, string>) => {
      const port = role === 'consumer' ? 0 : await freePort();
      const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'service.ts')], {
        env: {
          ...process.env,
          ROLE: role,
          ENV_ID: env,
          PORT: String(port),
          PREFIX: run,
          SERVICE_NAME: `${role}-${env}`,
          ...vars,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout?.on('data', (d) => String(d).includes('ready') && resolve());
        child.on('exit', (code) => reject(new Error(`${role}[${env}] exited with ${code}`)));
      });
      return port;
    };
    const stores = {
      MYSQL: mysqlProxy,
      POSTGRES: pgProxy,
      REDIS: redisProxy,
      AMQP: amqpProxy,
      MQTT: mqttProxy,
    };
    const bPorts: Record<string, number> = {};
    for (const env of CONFIG.instances.B) bPorts[env] = await start('B', env, stores);
    const bProxy = await proxyFor(bPorts, { propagate: true });
    const aPorts: Record<string, number> = {};
    for (const env of CONFIG.instances.A)
      aPorts[env] = await start('A', env, { B_URL: `http://${bProxy}` });
    const aProxy = await proxyFor(aPorts, { propagate: true });
    await start('consumer', CONFIG.baseline, stores);
    await waitForPort(Number(aProxy.split(':')[1]));
    // The edge: plain HTTP in (curl, a browser), PiCoP connections out, to A's proxy.
    gateway = createGateway({ listen: '127.0.0.1:0', upstream: aProxy });
    const edge = `127.0.0.1:${(await gateway.listen()).port}`;

    log(`sending one request per environment to the gateway (${edge}), as curl would ...`);
    const rows: DemoRow[] = [];
    const replies = new Map<string, { A: string; B: string }>();
    for (const env of CONFIG.requests) {
      const id = `${run}-${env}`;
      const body = await httpGet(`http://${edge}/order?id=${id}`, {
        agent: false,
        headers: { 'Env-Id': env },
      });
      replies.set(env, JSON.parse(body));
    }

    // Where did each request's work land? Read every instance directly.
    const redisClients = Object.entries(redisPorts).map(
      ([env, port]) => [env, new IORedis({ host: '127.0.0.1', port })] as const,
    );
    const mysqlConns = await Promise.all(
      Object.entries(mysqlPorts).map(
        async ([env, port]) =>
          [
            env,
            await mysql.createConnection({
              host: '127.0.0.1',
              port,
              user: 'root',
              password: '',
              database: 'test',
            }),
          ] as const,
      ),
    );
    const pgClients = await Promise.all(
      Object.entries(pgPorts).map(async ([env, port]) => {
        const client = new pg.Client({ ...PG_LOGIN, port });
        await client.connect();
        return [env, client] as const;
      }),
    );
    const consumed = async (key: string) => {
      for (let i = 0; i < 100; i++) {
        for (const [env, r] of redisClients) {
          const value = await r.get(`${run}:${key}`);
          if (value) return `${value} -> Redis[${env}]`;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      return 'not consumed';
    };
    for (const env of CONFIG.requests) {
      const id = `${run}-${env}`;
      const where = async <T>(
        list: ReadonlyArray<readonly [string, T]>,
        has: (c: T) => Promise<boolean>,
      ) => {
        const found: string[] = [];
        for (const [name, c] of list) if (await has(c)) found.push(name);
        return found.join('+') || 'nowhere';
      };
      rows.push({
        request: env,
        A: replies.get(env)?.A ?? '?',
        B: replies.get(env)?.B ?? '?',
        mysql: `C[${await where(mysqlConns, async (c) => ((await c.query(`SELECT 1 FROM ${table} WHERE request_id = ?`, [id]))[0] as unknown[]).length > 0)}]`,
        postgres: `PG[${await where(pgClients, async (c) => (await c.query(`SELECT 1 FROM ${table} WHERE request_id = $1`, [id])).rowCount === 1)}]`,
        redis: `Redis[${await where(redisClients, async (r) => (await r.exists(`${run}:${id}`)) === 1)}]`,
        consumer: await consumed(`consumed:${id}`),
        mqtt: await consumed(`mqtt:${id}`),
      });
    }
    for (const [, c] of mysqlConns) {
      await c.query(`DROP TABLE IF EXISTS ${table}`);
      await c.end();
    }
    for (const [, c] of pgClients) {
      await c.query(`DROP TABLE IF EXISTS ${table}`);
      await c.end();
    }
    for (const [, r] of redisClients) {
      const keys = await r.keys(`${run}:*`);
      if (keys.length > 0) await r.del(...keys);
      r.disconnect();
    }

    const expected = expectedTable();
    const ok = JSON.stringify(rows) === JSON.stringify(expected);
    const tryThis = CONFIG.requests.map(
      (env) => `curl -H 'Env-Id: ${env}' 'http://${edge}/order?id=try-${env}'`,
    );
    return { rows, expected, ok, tryThis, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
