// The resource side of logical isolation: 1, 10 and 50 environments on one Redis and one MariaDB
// (a key prefix / a database each, created on first use) against one server per environment.
// Server memory (RSS, summed over the servers) and the connections the servers hold, after every
// environment has written once. Runs under tsx (`npm run bench -- isolation`): it starts servers
// with the tests' helpers.
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { createPool } from '@picop/mysql';
import { withEnvId } from '@picop/propagator';
import { Redis } from '@picop/redis';
import { Redis as IORedis } from 'ioredis';
import mysql from 'mysql2/promise';
import { startMariadb, startRedis } from '../test/support/servers.ts';
import { table } from './lib.mjs';
import { env, rssMbOf } from './load.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const COUNTS = String(process.env.BENCH_ISOLATION_ENVS ?? '1,10,50')
  .split(',')
  .map(Number);
// Separate MariaDB servers cost a data directory and about 100 MB each (50: about 5 GB).
const MAX_MARIADB = env('BENCH_ISOLATION_MAX_MARIADB', 50);
const envIds = (n) => Array.from({ length: n }, (_, i) => `feature-${i + 1}`);
const mb = (x) => x.toFixed(0);
const rows = [];

async function redisIsolated(n) {
  const server = await startRedis();
  const redis = new Redis({ port: server.port, picop: { isolate: { keyPrefix: true } } });
  for (const id of envIds(n)) await withEnvId(id, () => redis.set('cart', 'x'.repeat(100)));
  const probe = new IORedis({ port: server.port });
  const info = await probe.info('clients');
  probe.disconnect();
  const clients = Number(/connected_clients:(\d+)/.exec(info)?.[1]) - 1;
  const rss = rssMbOf(server.pid);
  redis.disconnect();
  await server.stop();
  return { servers: 1, rss, clients };
}

async function redisPerEnvironment(n) {
  const servers = await Promise.all(envIds(n).map(() => startRedis()));
  const clients = servers.map((s) => new IORedis({ port: s.port }));
  await Promise.all(clients.map((c) => c.set('cart', 'x'.repeat(100))));
  const rss = servers.reduce((sum, s) => sum + rssMbOf(s.pid), 0);
  for (const c of clients) c.disconnect();
  await Promise.all(servers.map((s) => s.stop()));
  return { servers: n, rss, clients: n };
}

const login = { host: '127.0.0.1', user: 'root', password: '', database: 'test' };

async function mysqlIsolated(n) {
  const server = await startMariadb();
  const pool = createPool({
    ...login,
    port: server.port,
    connectionLimit: 2,
    picop: {
      maxPools: Math.max(n, 1),
      isolate: {
        database: (id) => `shop_${id}`,
        create: async ({ database }) => {
          await pool.query(`CREATE DATABASE IF NOT EXISTS ${pool.escapeId(database)}`);
          await pool.query(
            `CREATE TABLE IF NOT EXISTS ${pool.escapeId(database)}.orders (id INT PRIMARY KEY, body TEXT)`,
          );
        },
      },
    },
  });
  for (const id of envIds(n))
    await withEnvId(id, () => pool.query('INSERT INTO orders VALUES (1, ?)', ['x']));
  const admin = await mysql.createConnection({ ...login, port: server.port });
  const [[{ Value }]] = await admin.query("SHOW STATUS LIKE 'Threads_connected'");
  await admin.end();
  const rss = rssMbOf(server.pid);
  await pool.end();
  await server.stop();
  return { servers: 1, rss, clients: Number(Value) - 1 };
}

async function mysqlPerEnvironment(n) {
  if (n > MAX_MARIADB) return undefined;
  const servers = [];
  for (const _ of envIds(n)) servers.push(await startMariadb());
  const pools = servers.map((s) =>
    createPool({ ...login, port: s.port, connectionLimit: 2, picop: false }),
  );
  for (const p of pools) {
    await p.query('CREATE TABLE IF NOT EXISTS orders (id INT PRIMARY KEY, body TEXT)');
    await p.query('INSERT INTO orders VALUES (1, ?)', ['x']);
  }
  const rss = servers.reduce((sum, s) => sum + rssMbOf(s.pid), 0);
  for (const p of pools) await p.end();
  await Promise.all(servers.map((s) => s.stop()));
  return { servers: n, rss, clients: n };
}

for (const [store, isolated, separate] of [
  ['Redis', redisIsolated, redisPerEnvironment],
  ['MariaDB', mysqlIsolated, mysqlPerEnvironment],
]) {
  for (const n of COUNTS) {
    const one = await isolated(n);
    const each = await separate(n);
    rows.push([
      store,
      String(n),
      `${mb(one.rss)} MB, ${one.clients} conn.`,
      each ? `${mb(each.rss)} MB in ${each.servers} servers, ${each.clients} conn.` : 'not run',
      each ? `${(each.rss / one.rss).toFixed(1)}x` : '-',
    ]);
  }
}
table(
  'isolation: every environment on one server vs one server per environment (server RSS after one write each)',
  ['store', 'environments', 'one server, isolated', 'a server each', 'memory ratio'],
  rows,
);
process.exit(0);
