// PicopGuard's cost: @picop/redis GET and @picop/pg SELECT 1 (32 in flight, feature-1, through
// picop-proxy, each in a process of its own) with the ioredis and pg instrumentations in a NodeSDK, the guard on against off.
// Each case runs in a child process of its own (the instrumentations patch the libraries as they
// are required), the two alternating, after a warm-up; CPU per operation is the client's.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { table } from './lib.mjs';
import { closedLoop, env, startPicopProxy, stopAll } from './load.mjs';

const ROUNDS = env('BENCH_ROUNDS', 3);
const OPS = env('BENCH_GUARD_OPS', 20_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);

/** One child: the SDK with or without the guard, then each client's loop; prints the results. */
async function child(guardOn) {
  const require = createRequire(import.meta.url);
  const { NodeSDK } = require('@opentelemetry/sdk-node');
  const { IORedisInstrumentation } = require('@opentelemetry/instrumentation-ioredis');
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg');
  const { EnvIdPropagator, PicopGuard, withEnvId } = require('@picop/propagator');
  // Off: a processor that does nothing, so that both runs make and end the same spans.
  const idle = { onStart() {}, onEnd() {}, forceFlush: async () => {}, shutdown: async () => {} };
  new NodeSDK({
    textMapPropagator: new EnvIdPropagator(),
    spanProcessors: [guardOn ? new PicopGuard() : idle],
    instrumentations: [new IORedisInstrumentation(), new PgInstrumentation()],
    metricReaders: [],
    logRecordProcessors: [],
  }).start();
  const { trace } = require('@opentelemetry/api');
  const { Redis } = require('@picop/redis');
  const { Pool } = require('@picop/pg');
  const redis = new Redis({ host: '127.0.0.1', port: env('PICOP_BENCH_REDIS_PROXY') });
  const pool = new Pool({
    host: '127.0.0.1',
    port: env('PICOP_BENCH_PG_PROXY'),
    user: 'postgres',
    database: 'postgres',
    max: INFLIGHT,
  });
  const results = {};
  await trace.getTracer('bench').startActiveSpan('request', async (span) => {
    await withEnvId('feature-1', async () => {
      for (const [name, op] of [
        ['redis GET', () => redis.get('picop-bench-guard')],
        ['pg SELECT 1', () => pool.query('SELECT 1')],
      ]) {
        await closedLoop(OPS / 4, INFLIGHT, op); // warm-up
        results[name] = await closedLoop(OPS, INFLIGHT, op);
      }
    });
    span.end();
  });
  console.log(JSON.stringify(results));
  process.exit(0);
}

if (process.env.PICOP_BENCH_GUARD !== undefined) {
  await child(process.env.PICOP_BENCH_GUARD === 'on');
} else {
  // The proxies in processes of their own: the children's CPU is the client's alone.
  const proxies = {
    PICOP_BENCH_REDIS_PROXY: (await startPicopProxy(['--default', '127.0.0.1:6379'])).port,
    PICOP_BENCH_PG_PROXY: (await startPicopProxy(['--default', '127.0.0.1:5432'])).port,
  };
  const runs = { off: [], on: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url)], {
        env: { ...process.env, ...proxies, PICOP_BENCH_GUARD: mode },
        encoding: 'utf8',
      });
      runs[mode].push(JSON.parse(out.trim().split('\n').pop()));
    }
  }
  const f = (x) => x.toFixed(2);
  const range = (xs) => {
    const sorted = xs.toSorted((a, b) => a - b);
    return `${f(sorted[0])}-${f(sorted.at(-1))}`;
  };
  const median = (xs) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows = Object.keys(runs.off[0]).map((name) => {
    const cpu = (mode) => runs[mode].map((r) => r[name].cpuUsPerOp);
    const ratios = runs.on.map((r, i) => r[name].cpuUsPerOp / runs.off[i][name].cpuUsPerOp);
    const speed = runs.on.map((r, i) => r[name].opsPerSec / runs.off[i][name].opsPerSec);
    return [
      name,
      range(cpu('off')),
      range(cpu('on')),
      `${range(ratios)}x`,
      `${f(median(ratios))}x`,
      `${range(speed)}x`,
    ];
  });
  table(
    `guard: PicopGuard on vs off, feature-1 through picop-proxy, ${OPS} ops at ${INFLIGHT} in flight, with the ioredis and pg instrumentations (${ROUNDS} rounds, each a child process after a warm-up)`,
    ['operation', 'CPU us/op off', 'CPU us/op on', 'CPU on/off', 'median', 'ops/s on/off'],
    rows,
  );
  stopAll();
}
