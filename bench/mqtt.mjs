// @picop/mqtt against plain mqtt.js, both through picop-proxy (optional mode: MQTT's client speaks
// first), MQTT 5: QoS 1 publishing at 32 in flight, and publish -> receive round trips.
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { connectAsync } from '@picop/mqtt';
import { setEnvId } from '@picop/propagator';
import mqtt from 'mqtt';
import { table } from './lib.mjs';
import { closedLoop, env, loadsByClient, startPicopProxy, stopAll } from './load.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const BROKER = `127.0.0.1:${env('MQTT_PORT', 1883)}`;
const N = env('BENCH_MQTT_OPS', 30_000);
const N_RTT = env('BENCH_MQTT_RTT_OPS', 5_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);
const ROUNDS = env('BENCH_ROUNDS', 2);
const { port } = await startPicopProxy([
  '--default',
  BROKER,
  '--header',
  'optional',
  '--route',
  `feature-1=${BROKER}`,
]);
const url = `mqtt://127.0.0.1:${port}`;
const CTX = setEnvId(context.active(), 'feature-1');
const body = Buffer.from('x'.repeat(64));
const topic = `picop-bench-${process.pid}`;

async function publishRate(open, options) {
  const client = await open();
  const r = await context.with(CTX, () =>
    closedLoop(N, INFLIGHT, () => client.publishAsync(`${topic}/rate`, body, options)),
  );
  await client.endAsync();
  return r;
}

async function roundTrip(open, options) {
  const client = await open();
  const waiting = [];
  client.on('message', () => waiting.shift()?.());
  const r = await context.with(CTX, async () => {
    await client.subscribeAsync(`${topic}/rtt`, { qos: 0 });
    return closedLoop(
      N_RTT,
      1,
      () =>
        new Promise((resolve) => {
          waiting.push(resolve);
          client.publish(`${topic}/rtt`, body, { ...options, qos: 0 });
        }),
    );
  });
  await client.endAsync();
  return r;
}

// The second baseline sends the user property @picop/mqtt adds, by hand: what carrying it costs.
const v5 = { protocolVersion: 5 };
const clients = {
  'plain mqtt.js': [() => mqtt.connectAsync(url, v5), { qos: 1 }],
  'plain mqtt.js + Env-Id property': [
    () => mqtt.connectAsync(url, v5),
    { qos: 1, properties: { userProperties: { 'Env-Id': 'feature-1' } } },
  ],
  '@picop/mqtt': [() => connectAsync(url, v5), { qos: 1 }],
};
const loads = {
  'QoS 1 publish, 32 in flight': publishRate,
  'publish -> receive round trip': roundTrip,
};
const rows = await loadsByClient(loads, clients, ROUNDS);
stopAll();
table(
  `mqtt (MQTT 5 through picop-proxy, in feature-1; best of ${ROUNDS} interleaved rounds; latencies in ms)`,
  ['load', 'client', 'msgs/s', 'p50', 'p99', 'client CPU us/msg', 'vs plain', 'CPU vs plain'],
  rows,
);
process.exit(0);
