// @picop/bullmq against plain BullMQ on the same Redis: N jobs added 32 in flight and processed by
// one worker (concurrency 32) in the same process, until the last is done; one environment and
// four interleaved. Client CPU per job is this process's (adding and processing). Rounds
// interleaved, after a warm-up round.
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { Queue, Worker } from '@picop/bullmq';
import { setEnvId } from '@picop/propagator';
import { Queue as PlainQueue, Worker as PlainWorker } from 'bullmq';
import { Redis } from 'ioredis';
import { table } from './lib.mjs';
import { closedLoop, env, resultRow } from './load.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const REDIS = { host: '127.0.0.1', port: env('REDIS_PORT', 6379), maxRetriesPerRequest: null };
const N = env('BENCH_BULLMQ_JOBS', 10_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);
const ROUNDS = env('BENCH_ROUNDS', 5);
const CONTEXTS = ['feature-1', 'feature-2', 'feature-3', 'feature-4'].map((e) =>
  setEnvId(context.active(), e),
);
let runs = 0;

/** Adds `N` jobs, each in `CONTEXTS[i % environments]`, until the worker has processed them all. */
async function run(QueueClass, WorkerClass, environments, opts) {
  const name = `picop-bench-${process.pid}-${++runs}`;
  const connections = [new Redis(REDIS), new Redis(REDIS)];
  const queue = new QueueClass(name, { connection: connections[0] });
  let processed = 0;
  let allDone;
  const done = new Promise((resolve) => {
    allDone = resolve;
  });
  const worker = new WorkerClass(
    name,
    async () => {
      if (++processed === N) allDone();
    },
    { connection: connections[1], concurrency: INFLIGHT },
  );
  await worker.waitUntilReady();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const adding = await closedLoop(N, INFLIGHT, (i) =>
    context.with(CONTEXTS[i % environments], () => queue.add('job', { i }, opts)),
  );
  await done;
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  for (const c of connections) c.disconnect();
  // ops/s: jobs added and processed per second; latencies: of `add`.
  return { ...adding, opsPerSec: N / seconds, cpuUsPerOp: (used.user + used.system) / N };
}

// The second baseline carries the Env-Id in each job by hand, as @picop/bullmq does: what carrying
// it costs BullMQ (the job's stored options grow, and are read back).
const cases = {
  'plain BullMQ': () => run(PlainQueue, PlainWorker, 1),
  'plain BullMQ + Env-Id in the job': () =>
    run(PlainQueue, PlainWorker, 1, { telemetry: { metadata: '{"Env-Id":"feature-1"}' } }),
  '@picop/bullmq, 1 environment': () => run(Queue, Worker, 1),
  '@picop/bullmq, 4 environments interleaved': () => run(Queue, Worker, 4),
};
// Each case's median over the rounds (interleaved, the order reversed every other round, after
// a warm-up): on this shared machine a single round swings by more than the differences measured.
const results = new Map(Object.keys(cases).map((label) => [label, []]));
for (let round = -env('BENCH_WARMUP', 1); round < ROUNDS; round++) {
  const order = Object.entries(cases);
  if (round % 2 === 1) order.reverse();
  for (const [label, run] of order) {
    const r = await run();
    if (round >= 0) results.get(label).push(r);
  }
}
const median = (rs, key) => rs.map((r) => r[key]).toSorted((a, b) => a - b)[rs.length >> 1];
const medians = new Map(
  [...results].map(([label, rs]) => [
    label,
    {
      ...rs[0],
      ...Object.fromEntries(
        ['opsPerSec', 'cpuUsPerOp', 'p50', 'p99'].map((k) => [k, median(rs, k)]),
      ),
    },
  ]),
);
const plain = medians.get('plain BullMQ');
table(
  `bullmq: ${N} jobs added (${INFLIGHT} in flight) and processed (concurrency ${INFLIGHT}) (median of ${ROUNDS} interleaved rounds after a warm-up; add latencies in ms)`,
  ['client', 'jobs/s', 'p50', 'p99', 'client CPU us/job', 'vs plain', 'CPU vs plain'],
  [...medians].map(([label, r]) => resultRow(label, r, plain)),
);
process.exit(0);
