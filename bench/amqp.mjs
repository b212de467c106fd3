// @picop/amqp against plain amqplib, both through picop-proxy (optional mode: AMQP's client
// speaks first): confirm-channel publishing at 32 in flight, and publish -> consume round trips.
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { connect } from '@picop/amqp';
import { setEnvId } from '@picop/propagator';
import amqplib from 'amqplib';
import { table } from './lib.mjs';
import { closedLoop, env, loadsByClient, startPicopProxy, stopAll } from './load.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const broker = new URL(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
const N = env('BENCH_AMQP_OPS', 40_000);
const N_RTT = env('BENCH_AMQP_RTT_OPS', 5_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);
const ROUNDS = env('BENCH_ROUNDS', 4);
const { port } = await startPicopProxy([
  '--default',
  `${broker.hostname}:${broker.port || 5672}`,
  '--header',
  'optional',
  '--route',
  `feature-1=${broker.hostname}:${broker.port || 5672}`,
]);
const url = `amqp://${broker.username}:${broker.password}@127.0.0.1:${port}`;
const CTX = setEnvId(context.active(), 'feature-1');
const body = Buffer.from('x'.repeat(64));

async function publishRate(open, options) {
  return context.with(CTX, async () => {
    const conn = await open();
    const ch = await conn.createConfirmChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const r = await closedLoop(
      N,
      INFLIGHT,
      () =>
        new Promise((resolve, reject) =>
          ch.sendToQueue(queue, body, optionsOf(options), (err) => (err ? reject(err) : resolve())),
        ),
    );
    await conn.close();
    return r;
  });
}

async function roundTrip(open, options) {
  return context.with(CTX, async () => {
    const conn = await open();
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const waiting = [];
    await ch.consume(queue, () => waiting.shift()?.(), { noAck: true });
    const r = await closedLoop(
      N_RTT,
      1,
      () =>
        new Promise((resolve) => {
          waiting.push(resolve);
          ch.sendToQueue(queue, body, optionsOf(options));
        }),
    );
    await conn.close();
    return r;
  });
}

// A client's publish options: one object for every message, or a function making each message's.
const optionsOf = (options) => (typeof options === 'function' ? options() : options);

// The other baselines send the header @picop/amqp adds, by hand: what carrying it costs amqplib,
// with one headers object for every message (its best case) and with a new one per message (as
// @picop/amqp and most services do: amqplib makes each message's headers a prototype-linked copy,
// and a new prototype per message takes V8 off its fast paths).
const clients = {
  'plain amqplib': [() => amqplib.connect(url), {}],
  'plain amqplib + Env-Id header': [
    () => amqplib.connect(url),
    { headers: { 'Env-Id': 'feature-1' } },
  ],
  'plain amqplib + new Env-Id header object': [
    () => amqplib.connect(url),
    () => ({ headers: { 'Env-Id': 'feature-1' } }),
  ],
  '@picop/amqp': [() => connect(url), {}],
};
const loads = {
  'confirm publish, 32 in flight': publishRate,
  'publish -> consume round trip': roundTrip,
};
const rows = await loadsByClient(loads, clients, ROUNDS, env('BENCH_WARMUP', 1));
stopAll();
table(
  `amqp (through picop-proxy; best of ${ROUNDS} interleaved rounds after a warm-up; latencies in ms)`,
  ['load', 'client', 'ops/s', 'p50', 'p99', 'client CPU us/op', 'vs plain', 'CPU vs plain'],
  rows,
);
process.exit(0);
