// @picop/node-redis against plain node-redis, both through picop-proxy (optional mode, so plain
// node-redis needs no header), 32 in flight, GET. One run, rounds interleaved.
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { createClient } from '@picop/node-redis';
import { setEnvId } from '@picop/propagator';
import { createClient as createPlainClient } from 'redis';
import { table } from './lib.mjs';
import { bestOf, closedLoop, env, resultRow, startPicopProxy, stopAll } from './load.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const REDIS = { host: '127.0.0.1', port: env('REDIS_PORT', 6379) };
const N = env('BENCH_REDIS_OPS', 100_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);
const ROUNDS = env('BENCH_ROUNDS', 3);
const ENVS = ['feature-1', 'feature-2', 'feature-3', 'feature-4'];
const KEY = 'picop:bench:node-redis';

const { port } = await startPicopProxy([
  '--default',
  `${REDIS.host}:${REDIS.port}`,
  '--header',
  'optional',
  ...ENVS.flatMap((e) => ['--route', `${e}=${REDIS.host}:${REDIS.port}`]),
]);
const options = { socket: { host: '127.0.0.1', port } };
// A service sets the context once per request; each GET stands for one request's command.
const CONTEXTS = ENVS.map((e) => setEnvId(context.active(), e));

async function run(client, contextOf) {
  await client.connect();
  await Promise.all(CONTEXTS.map((ctx) => context.with(ctx, () => client.set(KEY, 'value'))));
  const r = await closedLoop(N, INFLIGHT, (i) => context.with(contextOf(i), () => client.get(KEY)));
  await client.close();
  return r;
}

// What four environments cost node-redis itself: four connections, each with a quarter of the
// commands in flight (smaller pipelines, more writes).
async function fourPlain() {
  const clients = ENVS.map(() => createPlainClient(options));
  await Promise.all(clients.map((c) => c.connect()));
  await clients[0].set(KEY, 'value');
  const r = await closedLoop(N, INFLIGHT, (i) =>
    context.with(CONTEXTS[i % 4], () => clients[i % 4].get(KEY)),
  );
  await Promise.all(clients.map((c) => c.close()));
  return r;
}

const CASES = {
  'plain node-redis (no header)': () => run(createPlainClient(options), () => context.active()),
  '@picop/node-redis, 1 environment': () => run(createClient(options), () => CONTEXTS[0]),
  '@picop/node-redis, 4 environments interleaved': () =>
    run(createClient(options), (i) => CONTEXTS[i % 4]),
  '4 plain node-redis clients, interleaved': fourPlain,
};

const best = await bestOf(CASES, ROUNDS);
stopAll();
const plain = best.get('plain node-redis (no header)');
table(
  `node-redis (GET, ${INFLIGHT} in flight, through picop-proxy; best of ${ROUNDS} interleaved rounds; latencies in ms)`,
  ['client', 'ops/s', 'p50', 'p99', 'client CPU us/op', 'vs plain node-redis', 'CPU vs plain'],
  Object.keys(CASES).map((name) => resultRow(name, best.get(name), plain)),
);
process.exit(0);
