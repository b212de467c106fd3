// @picop/redis against plain ioredis, both through picop-proxy (optional mode, so plain ioredis
// needs no header), 32 in flight, GET; and a new connection per command. One run, rounds interleaved.
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { setEnvId } from '@picop/propagator';
import { Redis } from '@picop/redis';
import { Redis as IORedis } from 'ioredis';
import { fmtRatio, table } from './lib.mjs';
import { bestOf, closedLoop, env, resultRow, startPicopProxy, stopAll } from './load.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const REDIS = { host: '127.0.0.1', port: env('REDIS_PORT', 6379) };
const N = env('BENCH_REDIS_OPS', 100_000);
const N_NEW = env('BENCH_REDIS_NEW_OPS', 3_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);
const ROUNDS = env('BENCH_ROUNDS', 3);
const ENVS = ['feature-1', 'feature-2', 'feature-3', 'feature-4'];
const KEY = 'picop:bench:redis';

const { port } = await startPicopProxy([
  '--default',
  `${REDIS.host}:${REDIS.port}`,
  '--header',
  'optional',
  ...ENVS.flatMap((e) => ['--route', `${e}=${REDIS.host}:${REDIS.port}`]),
]);
const options = { host: '127.0.0.1', port };
// A service sets the context once per request; each GET stands for one request's command.
const CONTEXTS = ENVS.map((e) => setEnvId(context.active(), e));

async function run(client, contextOf) {
  await Promise.all(CONTEXTS.map((ctx) => context.with(ctx, () => client.set(KEY, 'value'))));
  const r = await closedLoop(N, INFLIGHT, (i) => context.with(contextOf(i), () => client.get(KEY)));
  await client.quit();
  return r;
}

const CASES = {
  'plain ioredis (no header)': () => run(new IORedis(options), () => context.active()),
  '@picop/redis, 1 environment': () => run(new Redis(options), () => CONTEXTS[0]),
  '@picop/redis, 4 environments interleaved': () => run(new Redis(options), (i) => CONTEXTS[i % 4]),
  'new connection per command': () =>
    closedLoop(N_NEW, INFLIGHT, () =>
      context.with(CONTEXTS[0], async () => {
        const client = new Redis({ ...options, lazyConnect: true });
        await client.get(KEY);
        client.disconnect();
      }),
    ),
};

const best = await bestOf(CASES, ROUNDS);
stopAll();
const plain = best.get('plain ioredis (no header)');
const perConn = best.get('new connection per command').opsPerSec;
table(
  `redis (GET, ${INFLIGHT} in flight, through picop-proxy; best of ${ROUNDS} interleaved rounds; latencies in ms)`,
  [
    'client',
    'ops/s',
    'p50',
    'p99',
    'client CPU us/op',
    'vs plain ioredis',
    'CPU vs plain',
    'vs new conn/cmd',
  ],
  Object.keys(CASES).map((name) => [
    ...resultRow(name, best.get(name), plain),
    fmtRatio(best.get(name).opsPerSec / perConn),
  ]),
);
process.exit(0);
