// Starts the paper's three environments on free loopback ports, sends one request per environment,
// finds where each request's work landed by reading every instance directly, and checks the result
// against the paper's Table I.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGateway, type PicopGateway } from '@picop/gateway';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { ISOLATED_KEYS } from '@picop/redis';
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

/**
 * How services reach the stores: through a PiCoP proxy each (the paper's set-up), straight to
 * each environment's instance (proxyless), or one instance with a database / key prefix / schema
 * per environment (isolate).
 */
export type DemoMode = 'proxies' | 'proxyless' | 'isolate';

export interface DemoResult {
  rows: DemoRow[];
  expected: DemoRow[];
  ok: boolean;
  /** Curl commands to try while it runs (`keep`). */
  tryThis: string[];
  /** Each store instance and a command that reads what the demo wrote there (`keep`). */
  stores: string[];
  stop: () => Promise<void>;
}

const CONFIG: Environments = JSON.parse(readFileSync(join(__dirname, 'environments.json'), 'utf8'));
const MAIN_MYSQL = { host: '127.0.0.1', port: Number(process.env.MYSQL_PORT ?? 3306) };
const MAIN_REDIS = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) };
const MYSQL_LOGIN = { host: '127.0.0.1', user: 'root', password: '' };
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

export async function runDemo({
  log = (_: string) => {},
  mode = 'proxies' as DemoMode,
  /** The Redis client of services B and the consumer. */
  redisClient = 'ioredis' as 'ioredis' | 'node-redis',
  /** Leave the stores' rows and keys until `stop()`, to be read by hand. */
  keep = false,
} = {}): Promise<DemoResult> {
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
  let cleanup = async () => {};
  const stop = async () => {
    await cleanup().catch(() => {});
    killChildren();
    await gateway?.close(200);
    await Promise.all(proxies.map((p) => p.close(200)));
    await Promise.all(extra.map((s) => s.stop()));
  };

  try {
    const isolate = mode === 'isolate';
    const others = (list: string[]) => (isolate ? [] : list.filter((e) => e !== CONFIG.baseline));
    log(
      isolate
        ? `one MariaDB, one PostgreSQL and one Redis: feature-1 and feature-2 get a database (test_<Env-Id>), a schema (env_<Env-Id>) and a key prefix (${ISOLATED_KEYS}<Env-Id>:) each, created by B on first use ...`
        : 'starting the data stores: C (MariaDB), PostgreSQL and Redis of the environments ...',
    );
    const mysqlPorts: Record<string, number> = { [CONFIG.baseline]: MAIN_MYSQL.port };
    const pgPorts: Record<string, number> = { [CONFIG.baseline]: PG_PORT };
    const redisPorts: Record<string, number> = { [CONFIG.baseline]: MAIN_REDIS.port };
    await Promise.all([
      ...others(CONFIG.instances.mysql).map(async (env) => {
        const s = await startMariadb();
        extra.push(s);
        mysqlPorts[env] = s.port;
      }),
      ...others(CONFIG.instances.postgres).map(async (env) => {
        const s = await startPostgres();
        extra.push(s);
        pgPorts[env] = s.port;
      }),
      ...others(CONFIG.instances.redis).map(async (env) => {
        const s = await startRedis();
        extra.push(s);
        redisPorts[env] = s.port;
      }),
    ]);
    // How to reach each environment's own instance directly (to read it back).
    const own = (env: string) => isolate && env !== CONFIG.baseline;
    const mysqlAt = (env: string) => ({
      ...MYSQL_LOGIN,
      port: mysqlPorts[env] ?? MAIN_MYSQL.port,
      database: own(env) ? `test_${env}` : 'test',
    });
    const pgAt = (env: string) => ({
      ...PG_LOGIN,
      port: pgPorts[env] ?? PG_PORT,
      ...(own(env) && { options: `-c search_path="env_${env}"` }),
    });
    const redisAt = (env: string) => ({
      host: '127.0.0.1',
      port: redisPorts[env] ?? MAIN_REDIS.port,
      ...(own(env) && { keyPrefix: `${ISOLATED_KEYS}${env}:` }),
    });
    // The baseline's tables, and every instance's; isolated environments' databases, schemas and
    // tables are made by service B: the databases and schemas by its `isolate.create` callback.
    for (const env of isolate ? [CONFIG.baseline] : Object.keys(mysqlPorts)) {
      const conn = await mysql.createConnection(mysqlAt(env));
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${table} (request_id VARCHAR(64), env VARCHAR(64), served_by VARCHAR(64))`,
      );
      await conn.end();
    }
    for (const env of isolate ? [CONFIG.baseline] : Object.keys(pgPorts)) {
      const client = new pg.Client(pgAt(env));
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
    const address = (port: number) => `127.0.0.1:${port}`;
    /** How service B and the consumer reach a store, in this mode. */
    const storeVars = async (name: string, ports: Record<string, number>, envs: string[]) => {
      const baseline = address(ports[CONFIG.baseline] as number);
      if (mode === 'proxies') return { [name]: await proxyFor(ports) };
      if (mode === 'isolate') {
        return { [name]: baseline, [`ISOLATE_${name}`]: JSON.stringify(envs.filter(own)) };
      }
      const table = Object.fromEntries(
        Object.entries(ports)
          .filter(([env]) => env !== CONFIG.baseline)
          .map(([env, port]) => [env, address(port)]),
      );
      return { [name]: baseline, [`ROUTES_${name}`]: JSON.stringify(table) };
    };
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
          REDIS_CLIENT: redisClient,
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
      ...(await storeVars('MYSQL', mysqlPorts, CONFIG.instances.mysql)),
      ...(await storeVars('POSTGRES', pgPorts, CONFIG.instances.postgres)),
      ...(await storeVars('REDIS', redisPorts, CONFIG.instances.redis)),
      AMQP: amqpProxy,
      MQTT: mqttProxy,
    };
    const bPorts: Record<string, number> = {};
    for (const env of CONFIG.instances.B) bPorts[env] = await start('B', env, stores);
    // Proxyless, A calls B[main] and its fetch routes feature-2's calls to B[feature-2] itself.
    const toB: Record<string, string> =
      mode === 'proxyless'
        ? {
            B_URL: `http://${address(bPorts[CONFIG.baseline] as number)}`,
            ROUTES_B: JSON.stringify(
              Object.fromEntries(
                Object.entries(bPorts)
                  .filter(([env]) => env !== CONFIG.baseline)
                  .map(([env, port]) => [env, address(port)]),
              ),
            ),
          }
        : { B_URL: `http://${await proxyFor(bPorts, { propagate: true })}` };
    const aPorts: Record<string, number> = {};
    for (const env of CONFIG.instances.A) aPorts[env] = await start('A', env, toB);
    await start('consumer', CONFIG.baseline, stores);
    // The edge: plain HTTP in (curl, a browser), PiCoP connections out: to A's proxy, or,
    // proxyless, straight to A[feature-1] for feature-1 and to A[main] for the rest.
    if (mode === 'proxyless') {
      const { [CONFIG.baseline]: aMain, ...aOthers } = aPorts;
      gateway = createGateway({
        listen: '127.0.0.1:0',
        upstream: address(aMain as number),
        routes: Object.fromEntries(
          Object.entries(aOthers).map(([env, port]) => [env, address(port)]),
        ),
      });
    } else {
      const aProxy = await proxyFor(aPorts, { propagate: true });
      await waitForPort(Number(aProxy.split(':')[1]));
      gateway = createGateway({ listen: '127.0.0.1:0', upstream: aProxy });
    }
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
    const redisClients = CONFIG.instances.redis.map(
      (env) => [env, new IORedis(redisAt(env))] as const,
    );
    // An isolated environment's database or schema exists only once B has used it.
    const mysqlConns = await Promise.all(
      CONFIG.instances.mysql.map(
        async (env) =>
          [env, await mysql.createConnection(mysqlAt(env)).catch(() => undefined)] as const,
      ),
    );
    const pgClients = await Promise.all(
      CONFIG.instances.postgres.map(async (env) => {
        const client = new pg.Client(pgAt(env));
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
        // pacing: the consumer is another process; the demo reads its store as a user would
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
        mysql: `C[${await where(mysqlConns, async (c) => c !== undefined && ((await c.query(`SELECT 1 FROM ${table} WHERE request_id = ?`, [id]))[0] as unknown[]).length > 0)}]`,
        postgres: `PG[${await where(pgClients, async (c) => (await c.query(`SELECT 1 FROM ${table} WHERE request_id = $1`, [id]).catch(() => ({ rowCount: 0 }))).rowCount === 1)}]`,
        redis: `Redis[${await where(redisClients, async (r) => (await r.exists(`${run}:${id}`)) === 1)}]`,
        consumer: await consumed(`consumed:${id}`),
        mqtt: await consumed(`mqtt:${id}`),
      });
    }
    cleanup = async () => {
      cleanup = async () => {};
      for (const [env, c] of mysqlConns) {
        await c?.query(
          own(env) ? `DROP DATABASE \`test_${env}\`` : `DROP TABLE IF EXISTS ${table}`,
        );
        await c?.end();
      }
      for (const [env, c] of pgClients) {
        await c.query(
          own(env) ? `DROP SCHEMA IF EXISTS "env_${env}" CASCADE` : `DROP TABLE IF EXISTS ${table}`,
        );
        await c.end();
      }
      for (const [env, r] of redisClients) {
        // KEYS answers full names; DEL adds the client's prefix.
        const prefix = own(env) ? `${ISOLATED_KEYS}${env}:` : '';
        const keys = await r.keys(`${prefix}${run}:*`);
        if (keys.length > 0) await r.del(...keys.map((k) => k.slice(prefix.length)));
        r.disconnect();
      }
    };
    if (!keep) await cleanup();
    const readBack = [
      ...CONFIG.instances.mysql.map((env) => {
        const at = mysqlAt(env);
        return `C[${env}]${own(env) ? ` (database ${at.database} on C[${CONFIG.baseline}])` : ''}: mariadb -h 127.0.0.1 -P ${at.port} -u root ${at.database} -e 'SELECT * FROM ${table}'`;
      }),
      ...CONFIG.instances.postgres.map((env) => {
        const at = pgAt(env);
        const from = own(env) ? `"env_${env}".${table}` : table;
        return `PG[${env}]${own(env) ? ` (schema env_${env} on PG[${CONFIG.baseline}])` : ''}: psql -h 127.0.0.1 -p ${at.port} -U postgres -c 'SELECT * FROM ${from}'`;
      }),
      ...CONFIG.instances.redis.map((env) => {
        const at = redisAt(env);
        const prefix = own(env) ? `${ISOLATED_KEYS}${env}:` : '';
        return `Redis[${env}]${own(env) ? ` (key prefix ${prefix} on Redis[${CONFIG.baseline}])` : ''}: redis-cli -p ${at.port} --scan --pattern '${prefix}${run}:*'`;
      }),
    ];

    const expected = expectedTable();
    const ok = JSON.stringify(rows) === JSON.stringify(expected);
    const tryThis = CONFIG.requests.map(
      (env) => `curl -H 'Env-Id: ${env}' 'http://${edge}/order?id=try-${env}'`,
    );
    return { rows, expected, ok, tryThis, stores: readBack, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
