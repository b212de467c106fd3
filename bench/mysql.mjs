// @picop/mysql against plain mysql2, both through picop-proxy, 32 in flight, SELECT 1; and the
// Go reference's way (a new connection per query). One run, rounds interleaved.
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { createConnection, createPool } from '@picop/mysql';
import { connect } from '@picop/net-wrap';
import { setEnvId, withEnvId } from '@picop/propagator';
import mysql from 'mysql2/promise';
import { fmtRatio, table } from './lib.mjs';
import { bestOf, closedLoop, env, resultRow, startPicopProxy, stopAll } from './load.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const MYSQL = { host: '127.0.0.1', port: env('MYSQL_PORT', 3306) };
const login = { user: 'root', password: '', database: 'test' };
const N = env('BENCH_MYSQL_OPS', 30_000);
const N_NEW = env('BENCH_MYSQL_NEW_OPS', 2_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);
const ROUNDS = env('BENCH_ROUNDS', 2);
const ENVS = ['feature-1', 'feature-2', 'feature-3', 'feature-4'];

// Every Env-Id goes to the same MariaDB: the benchmark measures the client side.
const { port } = await startPicopProxy([
  '--default',
  `${MYSQL.host}:${MYSQL.port}`,
  ...ENVS.flatMap((e) => ['--route', `${e}=${MYSQL.host}:${MYSQL.port}`]),
]);
const viaProxy = { ...login, host: '127.0.0.1', port, connectionLimit: 10 };

// A service sets the context once per request; each query here stands for one request's query.
const CONTEXTS = ENVS.map((e) => setEnvId(context.active(), e));

async function run(pool, contextOf) {
  await Promise.all(CONTEXTS.map((ctx) => context.with(ctx, () => pool.query('SELECT 1'))));
  const r = await closedLoop(N, INFLIGHT, (i) =>
    context.with(contextOf(i), () => pool.query('SELECT 1')),
  );
  await pool.end();
  return r;
}

const CASES = {
  // MySQL's server speaks first, so a header-less client cannot use the proxy's optional mode:
  // the baseline is plain mysql2 whose stream sends one fixed header.
  'mysql2 pool of 10 (fixed header)': () =>
    run(
      mysql.createPool({
        ...viaProxy,
        stream: () => connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } }),
      }),
      () => CONTEXTS[0],
    ),
  '@picop/mysql, 1 environment': () => run(createPool(viaProxy), () => CONTEXTS[0]),
  '@picop/mysql, 4 environments interleaved': () =>
    run(createPool(viaProxy), (i) => CONTEXTS[i % 4]),
  'new connection per query (Go reference)': () =>
    closedLoop(N_NEW, INFLIGHT, () =>
      withEnvId('feature-1', async () => {
        const conn = await createConnection({ ...login, host: '127.0.0.1', port });
        await conn.query('SELECT 1');
        await conn.end();
      }),
    ),
};

const best = await bestOf(CASES, ROUNDS);
stopAll();
const plain = best.get('mysql2 pool of 10 (fixed header)');
const perConn = best.get('new connection per query (Go reference)').opsPerSec;
table(
  `mysql (SELECT 1, ${INFLIGHT} in flight, through picop-proxy; best of ${ROUNDS} interleaved rounds; latencies in ms)`,
  [
    'client',
    'ops/s',
    'p50',
    'p99',
    'client CPU us/op',
    'vs plain mysql2',
    'CPU vs plain',
    'vs new conn/query',
  ],
  Object.keys(CASES).map((name) => [
    ...resultRow(name, best.get(name), plain),
    fmtRatio(best.get(name).opsPerSec / perConn),
  ]),
);
process.exit(0);
