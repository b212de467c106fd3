import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { connect } from '@picop/amqp';
import { setEnvId } from '@picop/propagator';
import amqplib from 'amqplib';
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const which = process.argv[2];
const url = 'amqp://guest:guest@127.0.0.1:15673';
const CTX = setEnvId(context.active(), 'feature-1');
const body = Buffer.from('x'.repeat(64));
const N = 40000, INFLIGHT = 32;
await context.with(CTX, async () => {
  const conn = which === 'picop' ? await connect(url) : await amqplib.connect(url);
  const ch = await conn.createConfirmChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  const opts = () => (which === 'picop' ? {} : { headers: { 'Env-Id': 'feature-1' } });
  const one = () => new Promise((res, rej) => ch.sendToQueue(queue, body, opts(), (e) => (e ? rej(e) : res())));
  for (let round = 0; round < 3; round++) {
    const c0 = process.cpuUsage(); const t0 = performance.now();
    let sent = 0;
    await Promise.all(Array.from({ length: INFLIGHT }, async () => { while (sent++ < N) await one(); }));
    const c = process.cpuUsage(c0);
    console.log(which, 'round', round, 'us/op', ((c.user + c.system) / N).toFixed(1), 'ops/s', Math.round(N / ((performance.now() - t0) / 1000)));
  }
  await conn.close();
});
