// Where the routing runs: a plain client straight to the server, @picop/* routing itself
// (proxyless), @picop/* through picop-proxy, and a plain client through HAProxy, side by side in
// one run, for Redis (GET), MySQL and PostgreSQL (SELECT 1), at 1 and 32 in flight, in feature-1.
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { createPool } from '@picop/mysql';
import { Pool } from '@picop/pg';
import { setEnvId } from '@picop/propagator';
import { Redis } from '@picop/redis';
import { Redis as IORedis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { table } from './lib.mjs';
import {
  bestOf,
  closedLoop,
  env,
  resultRow,
  startHaproxy,
  startPicopProxy,
  stopAll,
} from './load.mjs';
import { freePort } from './ports.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const N = env('BENCH_PROXYLESS_OPS', 20_000);
const ROUNDS = env('BENCH_ROUNDS', 2);
const FEATURE = setEnvId(context.active(), 'feature-1');
const SERVERS = {
  redis: env('REDIS_PORT', 6379),
  mysql: env('MYSQL_PORT', 3306),
  pg: env('PG_PORT', 5432),
};
const here = (port) => `127.0.0.1:${port}`;

// One picop-proxy and one HAProxy listener per server; feature-1 routed to the same server, so
// every path ends at the same place and only the path differs.
const proxies = {};
const haPorts = {};
for (const [name, port] of Object.entries(SERVERS)) {
  proxies[name] = (
    await startPicopProxy(['--default', here(port), '--route', `feature-1=${here(port)}`])
  ).port;
  haPorts[name] = await freePort();
}
const haproxy = await startHaproxy(
  Object.entries(SERVERS).map(([name, port]) => ({
    name,
    port: haPorts[name],
    target: here(port),
  })),
);

const routed = (name) => ({ routes: { table: { 'feature-1': here(SERVERS[name]) } } });
const clients = {
  redis: {
    op: (c) => c.get('picop:bench:proxyless'),
    close: (c) => c.quit(),
    paths: {
      'plain ioredis, direct': () => new IORedis({ port: SERVERS.redis }),
      '@picop/redis, proxyless': () => new Redis({ port: SERVERS.redis, picop: routed('redis') }),
      '@picop/redis, through picop-proxy': () => new Redis({ port: proxies.redis }),
      'plain ioredis, through HAProxy': () => new IORedis({ port: haPorts.redis }),
    },
  },
  mysql: {
    op: (c) => c.query('SELECT 1'),
    close: (c) => c.end(),
    paths: {
      'plain mysql2 pool, direct': () => mysql.createPool(mysqlAt(SERVERS.mysql)),
      '@picop/mysql, proxyless': () =>
        createPool({ ...mysqlAt(SERVERS.mysql), picop: routed('mysql') }),
      '@picop/mysql, through picop-proxy': () => createPool(mysqlAt(proxies.mysql)),
      'plain mysql2 pool, through HAProxy': () => mysql.createPool(mysqlAt(haPorts.mysql)),
    },
  },
  pg: {
    op: (c) => c.query('SELECT 1'),
    close: (c) => c.end(),
    paths: {
      'plain pg Pool, direct': () => new pg.Pool(pgAt(SERVERS.pg)),
      '@picop/pg, proxyless': () => new Pool({ ...pgAt(SERVERS.pg), picop: routed('pg') }),
      '@picop/pg, through picop-proxy': () => new Pool(pgAt(proxies.pg)),
      'plain pg Pool, through HAProxy': () => new pg.Pool(pgAt(haPorts.pg)),
    },
  },
};
function mysqlAt(port) {
  return {
    host: '127.0.0.1',
    port,
    user: 'root',
    password: '',
    database: 'test',
    connectionLimit: 10,
  };
}
function pgAt(port) {
  return { host: '127.0.0.1', port, user: 'postgres', database: 'postgres', max: 10 };
}

for (const [name, { op, close, paths }] of Object.entries(clients)) {
  const cases = {};
  for (const inflight of [1, 32]) {
    for (const [path, open] of Object.entries(paths)) {
      if (path.includes('HAProxy') && !haproxy) continue;
      cases[`${inflight}|${path}`] = () =>
        context.with(FEATURE, async () => {
          const client = open();
          await op(client);
          const r = await closedLoop(inflight === 1 ? N / 4 : N, inflight, () => op(client));
          await close(client);
          return r;
        });
    }
  }
  const best = await bestOf(cases, ROUNDS);
  const rows = [];
  for (const inflight of [1, 32]) {
    const direct = best.get(`${inflight}|${Object.keys(paths)[0]}`);
    for (const path of Object.keys(paths)) {
      const r = best.get(`${inflight}|${path}`);
      if (r) rows.push([String(inflight), ...resultRow(path, r, direct)]);
    }
  }
  table(
    `${name}: where the routing runs (feature-1; best of ${ROUNDS} interleaved rounds; latencies in ms)`,
    ['in flight', 'path', 'ops/s', 'p50', 'p99', 'client CPU us/op', 'vs direct', 'CPU vs direct'],
    rows,
  );
}
stopAll();
process.exit(0);
