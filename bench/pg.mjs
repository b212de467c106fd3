// @picop/pg against plain node-postgres, both through picop-proxy (optional mode: PostgreSQL's
// client speaks first, so plain pg needs no header), 32 in flight, SELECT 1 and a small insert;
// and a new connection per query. One run, rounds interleaved. Then pgbench -S (a load generator
// none of us wrote) direct, through HAProxy and through picop-proxy.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { Client, Pool } from '@picop/pg';
import { setEnvId, withEnvId } from '@picop/propagator';
import pg from 'pg';
import { fmtRatio, table } from './lib.mjs';
import {
  bestOf,
  closedLoop,
  cpuMsOf,
  env,
  resultRow,
  startHaproxy,
  startPicopProxy,
  stopAll,
} from './load.mjs';
import { freePort } from './ports.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const PG = { host: '127.0.0.1', port: env('PG_PORT', 5432) };
const login = { user: 'postgres', database: 'postgres' };
const N = env('BENCH_PG_OPS', 30_000);
const N_NEW = env('BENCH_PG_NEW_OPS', 1_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);
const ROUNDS = env('BENCH_ROUNDS', 2);
const ENVS = ['feature-1', 'feature-2', 'feature-3', 'feature-4'];
const TABLE = `picop_bench_${process.pid}`;

// Every Env-Id goes to the same PostgreSQL: the benchmark measures the client side.
const { port, pid: proxyPid } = await startPicopProxy([
  '--default',
  `${PG.host}:${PG.port}`,
  '--header',
  'optional',
  ...ENVS.flatMap((e) => ['--route', `${e}=${PG.host}:${PG.port}`]),
]);
const viaProxy = { ...login, host: '127.0.0.1', port, max: 10 };
const CONTEXTS = ENVS.map((e) => setEnvId(context.active(), e));
const setup = new pg.Client({ ...login, ...PG });
await setup.connect();
await setup.query(`CREATE UNLOGGED TABLE ${TABLE} (id int, env text)`);

const QUERIES = {
  'SELECT 1': (pool) => pool.query('SELECT 1'),
  insert: (pool, i) => pool.query(`INSERT INTO ${TABLE} VALUES ($1, $2)`, [i, 'x']),
};

async function run(pool, contextOf, query) {
  await Promise.all(CONTEXTS.map((ctx) => context.with(ctx, () => pool.query('SELECT 1'))));
  const r = await closedLoop(N, INFLIGHT, (i) => context.with(contextOf(i), () => query(pool, i)));
  await pool.end();
  return r;
}

const rows = [];
for (const [queryName, query] of Object.entries(QUERIES)) {
  const cases = {
    'plain pg Pool of 10': () => run(new pg.Pool(viaProxy), () => context.active(), query),
    '@picop/pg, 1 environment': () => run(new Pool(viaProxy), () => CONTEXTS[0], query),
    '@picop/pg, 4 environments interleaved': () =>
      run(new Pool(viaProxy), (i) => CONTEXTS[i % 4], query),
    'new connection per query': () =>
      closedLoop(N_NEW, INFLIGHT, (i) =>
        withEnvId('feature-1', async () => {
          const client = new Client({ ...login, host: '127.0.0.1', port });
          await client.connect();
          await query(client, i);
          await client.end();
        }),
      ),
  };
  const best = await bestOf(cases, ROUNDS);
  const plain = best.get('plain pg Pool of 10');
  const perConn = best.get('new connection per query').opsPerSec;
  for (const name of Object.keys(cases)) {
    const [label, ...cells] = resultRow(name, best.get(name), plain);
    rows.push([queryName, label, ...cells, fmtRatio(best.get(name).opsPerSec / perConn)]);
  }
}
await setup.query(`DROP TABLE ${TABLE}`);
table(
  `pg (${INFLIGHT} in flight, through picop-proxy; best of ${ROUNDS} interleaved rounds; latencies in ms)`,
  [
    'query',
    'client',
    'ops/s',
    'p50',
    'p99',
    'client CPU us/op',
    'vs plain pg',
    'CPU vs plain',
    'vs new conn/query',
  ],
  rows,
);

// pgbench -S -c 16: the same select-only load, direct, through HAProxy (one thread, TCP mode) and
// through picop-proxy (optional mode: pgbench sends no header). Proxy CPU per transaction from /proc.
const PGBENCH_SECONDS = env('BENCH_PGBENCH_SECONDS', 8);
const DB = `picop_bench_${process.pid}`;
const pgbench = (args) => promisify(execFile)('pgbench', ['-U', 'postgres', ...args]);
const haPort = await freePort();
const haproxy = await startHaproxy([{ name: 'pg', port: haPort, target: `${PG.host}:${PG.port}` }]);
const targets = {
  direct: { port: PG.port },
  ...(haproxy && { HAProxy: { port: haPort, pid: haproxy.pid } }),
  'picop-proxy': { port, pid: proxyPid },
};
await setup.query(`CREATE DATABASE ${DB}`);
await pgbench(['-h', PG.host, '-p', String(PG.port), '-i', '-s', '10', '-q', DB]);
const runs = Object.fromEntries(Object.keys(targets).map((name) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  const names = Object.keys(targets);
  for (const name of round % 2 ? names.reverse() : names) {
    const { port: p, pid } = targets[name];
    const cpuBefore = pid && cpuMsOf(pid);
    const { stdout } = await pgbench([
      '-h',
      '127.0.0.1',
      '-p',
      String(p),
      '-S',
      '-c',
      '16',
      '-j',
      '2',
      '-T',
      String(PGBENCH_SECONDS),
      DB,
    ]);
    const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
    const transactions = Number(/processed: (\d+)/.exec(stdout)?.[1]);
    const cpuUs = pid ? ((cpuMsOf(pid) - cpuBefore) * 1000) / transactions : undefined;
    runs[name].push({ tps, cpuUs });
  }
}
await setup.query(`DROP DATABASE ${DB}`);
await setup.end();
stopAll();
const span = (xs, f) => {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi ? f(lo) : `${f(lo)}-${f(hi)}`;
};
table(
  `pgbench -S -c 16 -j 2, ${PGBENCH_SECONDS} s each, ${ROUNDS} interleaved rounds (ranges over rounds)`,
  ['path', 'tps', 'vs direct', 'proxy CPU us/transaction'],
  Object.entries(runs).map(([name, rs]) => [
    name,
    span(
      rs.map((r) => r.tps),
      (x) => x.toFixed(0),
    ),
    span(
      rs.map((r, i) => r.tps / runs.direct[i].tps),
      fmtRatio,
    ),
    rs[0].cpuUs === undefined
      ? '-'
      : span(
          rs.map((r) => r.cpuUs),
          (x) => x.toFixed(1),
        ),
  ]),
);
process.exit(0);
