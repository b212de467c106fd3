import { connect, contextOfMessage } from '@picop/amqp';
import { getEnvId, withEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { Redis } from '@picop/redis';
import amqplib, { type ChannelModel, type ConsumeMessage } from 'amqplib';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useContextManager } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import {
  AMQP_URL,
  type ExtraServer,
  REDIS_HOST,
  REDIS_PORT,
  startRedis,
} from '../../../test/support/servers.js';

useContextManager();
const run = `picop-amqp-${runId()}`;
const broker = new URL(AMQP_URL);

describe('@picop/amqp through the PiCoP proxy', () => {
  let amqpProxy: PicopProxy;
  let redisProxy: PicopProxy;
  let secondRedis: ExtraServer;
  let url: string;
  let admin: ChannelModel;
  const closeLater: Array<{ close(): Promise<void> }> = [];

  const startAmqpProxy = async (port = 0) => {
    const target = `${broker.hostname}:${broker.port || 5672}`;
    amqpProxy = createProxy({
      listen: `127.0.0.1:${port}`,
      defaultRoute: target,
      routes: { 'feature-1': target, 'feature-2': target, main: target },
    });
    const address = await amqpProxy.listen();
    url = `amqp://${broker.username || 'guest'}:${broker.password || 'guest'}@127.0.0.1:${address.port}`;
  };

  beforeAll(async () => {
    await startAmqpProxy();
    secondRedis = await startRedis();
    redisProxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${REDIS_HOST}:${REDIS_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${secondRedis.port}` },
    });
    await redisProxy.listen();
    admin = await amqplib.connect(AMQP_URL);
  });
  afterAll(async () => {
    for (const c of closeLater) await c.close().catch(() => undefined);
    await admin.close();
    await amqpProxy.close(100);
    await redisProxy.close(100);
    await secondRedis.stop();
  });

  const open = async (options: Parameters<typeof connect>[1] = {}) => {
    const conn = await connect(url, options);
    // As in a service: a connection lost later (the restart test) is reported here, not thrown.
    conn.on('error', () => {});
    closeLater.push(conn);
    return conn;
  };

  it('runs the consumer in the message environment, end to end to that environment Redis', async () => {
    const queue = `${run}-e2e`;
    const redis = new Redis({ host: '127.0.0.1', port: redisProxy.address?.port });
    const publisher = await withEnvId('feature-1', () => open());
    const consumer = await open(); // a worker process: no request context, no envId
    const pubChannel = await withEnvId('feature-1', () => publisher.createChannel());
    const subChannel = await consumer.createChannel();
    await subChannel.assertQueue(queue, { autoDelete: true });
    const handled = new Promise<string | undefined>((resolve) => {
      subChannel.consume(queue, async (msg) => {
        if (!msg) return;
        await redis.set(`${run}:order`, msg.content.toString()); // routed by the message's Env-Id
        subChannel.ack(msg);
        resolve(getEnvId());
      });
    });
    await withEnvId('feature-1', async () => pubChannel.sendToQueue(queue, Buffer.from('order-1')));
    expect(await handled).toBe('feature-1');
    const direct = new IORedis({ host: '127.0.0.1', port: secondRedis.port });
    expect(await direct.get(`${run}:order`)).toBe('order-1');
    direct.disconnect();
    await redis.quit();
    // The proxy saw the publisher's connection with its own header.
    expect(amqpProxy.stats().byEnv['feature-1']?.accepted).toBeGreaterThanOrEqual(1);
  });

  it("puts the Env-Id in the message headers without touching the caller's options", async () => {
    const queue = `${run}-headers`;
    const conn = await open();
    const ch = await withEnvId('feature-2', () => conn.createChannel());
    await ch.assertQueue(queue, { autoDelete: true });
    const options = Object.freeze({
      headers: Object.freeze({ 'x-app': 'shop' }),
      persistent: true,
    });
    await withEnvId('feature-2', async () => ch.sendToQueue(queue, Buffer.from('a'), options));
    await withEnvId('feature-2', async () =>
      ch.sendToQueue(queue, Buffer.from('b'), { headers: { 'env-id': 'explicit' } }),
    );
    expect(options).toEqual({ headers: { 'x-app': 'shop' }, persistent: true });
    const [first, second] = (await waitForMessages(ch, queue, 2)) as [
      amqplib.ConsumeMessage,
      amqplib.ConsumeMessage,
    ];
    expect(first.properties.headers).toEqual({ 'x-app': 'shop', 'Env-Id': 'feature-2' });
    expect(second.properties.headers).toEqual({ 'env-id': 'explicit' }); // the caller's own header wins
    expect(getEnvId(contextOfMessage(first))).toBe('feature-2');
  });

  it("runs a message without Env-Id in the consumer's own environment", async () => {
    const queue = `${run}-own`;
    const consumer = await open({ picop: { envId: 'feature-2' } });
    const ch = await consumer.createChannel();
    await ch.assertQueue(queue, { autoDelete: true });
    const seen = new Promise<string | undefined>((resolve) =>
      ch.consume(queue, (msg) => {
        if (msg) ch.ack(msg);
        resolve(getEnvId());
      }),
    );
    const plain = await admin.createChannel();
    plain.sendToQueue(queue, Buffer.from('no env'));
    expect(await seen).toBe('feature-2');
    await plain.close();
  });

  it('selective mode: 10,000 confirmed messages in 3 environments, each handled once by the right consumer', async () => {
    const exchange = `${run}-orders`;
    const total = 10_000;
    const envs = ['feature-1', 'feature-2', 'main'];
    const handledBy = new Map<string, string>();
    const duplicates: string[] = [];
    let delivered = 0;
    let consuming: Promise<void> = Promise.resolve();
    const done = new Promise<void>((resolve) => {
      const check = () => {
        if (delivered === total * envs.length) resolve();
      };
      const startConsumer = async (envId: string) => {
        const conn = await open({
          picop: { envId, selective: true, ownConsumers: ['feature-1', 'feature-2'] },
        });
        const ch = await conn.createChannel();
        await ch.prefetch(200);
        const { queue } = await ch.assertQueue(`${exchange}.${envId}`, { autoDelete: true });
        await ch.bindQueue(queue, exchange, '');
        // Every queue gets a copy; wrap ack to count what the wrapper skips too.
        const ack = ch.ack.bind(ch);
        ch.ack = (msg: ConsumeMessage, ...rest: [boolean?]) => {
          delivered++;
          ack(msg, ...rest);
          check();
        };
        await ch.consume(queue, (msg) => {
          if (!msg) return;
          const id = msg.content.toString();
          if (handledBy.has(id)) duplicates.push(id);
          handledBy.set(id, `${envId}:${getEnvId()}`);
          ch.ack(msg);
        });
      };
      consuming = (async () => {
        const setup = await admin.createChannel();
        await setup.assertExchange(exchange, 'fanout', { autoDelete: true });
        await setup.close();
        for (const env of envs) await startConsumer(env);
      })();
    });
    await consuming; // every queue bound and consumed: no message can be missed
    const publisher = await open();
    const confirm = await publisher.createConfirmChannel();
    for (let i = 0; i < total; i++) {
      const env = envs[i % 3] as string;
      withEnvId(env, () => confirm.publish(exchange, '', Buffer.from(String(i))));
    }
    await confirm.waitForConfirms();
    await done;
    expect(duplicates).toEqual([]);
    expect(handledBy.size).toBe(total);
    for (let i = 0; i < total; i++) {
      const env = envs[i % 3];
      expect(handledBy.get(String(i))).toBe(`${env}:${env}`);
    }
  }, 120_000);

  it('a lost connection is reported as amqplib reports it, and the next one carries the header', async () => {
    const conn = await withEnvId('feature-1', () => open());
    await withEnvId('feature-1', () => conn.createChannel());
    const closed = new Promise((resolve) => conn.on('close', resolve));
    const port = amqpProxy.address?.port;
    await amqpProxy.close(0); // cuts every connection, as a broker restart would
    await closed;
    await startAmqpProxy(port);
    const ch = await withEnvId('feature-1', () => conn.createChannel());
    await ch.checkQueue(`${run}-nonexistent`).catch(() => undefined);
    expect(amqpProxy.stats().byEnv['feature-1']?.accepted).toBe(1);
  });

  it("with amqplib's recovery, every recovered connection carries the header", async () => {
    const conn = await withEnvId('feature-1', () =>
      open({ recovery: { initialDelay: 50, maxDelay: 200 } }),
    );
    await withEnvId('feature-1', () => conn.createChannel());
    const disconnected = new Promise((resolve) => conn.once('disconnect', resolve));
    const port = amqpProxy.address?.port;
    await amqpProxy.close(0);
    await disconnected;
    const reconnected = new Promise((resolve) => conn.once('connect', resolve));
    await startAmqpProxy(port);
    await reconnected;
    expect(amqpProxy.stats().byEnv['feature-1']?.accepted).toBeGreaterThanOrEqual(1);
    const ch = await withEnvId('feature-1', () => conn.createChannel());
    expect(typeof ch.assertQueue).toBe('function');
  });

  it('is plain amqplib with picop: false', async () => {
    const conn = await connect(AMQP_URL, { picop: false });
    expect(conn.constructor.name).toBe(
      (
        await amqplib.connect(AMQP_URL).then(async (c) => {
          await c.close();
          return c;
        })
      ).constructor.name,
    );
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await withEnvId('feature-1', async () => ch.sendToQueue(queue, Buffer.from('x')));
    const [msg] = (await waitForMessages(ch, queue, 1)) as [amqplib.ConsumeMessage];
    expect(msg.properties.headers?.['Env-Id']).toBeUndefined();
    await conn.close();
  });

  it('rejects as amqplib does when the broker cannot be reached', async () => {
    await expect(connect('amqp://127.0.0.1:1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(connect('http://x')).rejects.toThrow(/amqp: or amqps:/);
  });
});

/** The next `count` messages of `queue`, in order, as they are delivered (then the consumer ends). */
async function waitForMessages(
  ch: amqplib.Channel,
  queue: string,
  count: number,
): Promise<amqplib.ConsumeMessage[]> {
  const got: amqplib.ConsumeMessage[] = [];
  let all!: () => void;
  const done = new Promise<void>((resolve) => (all = resolve));
  const { consumerTag } = await ch.consume(
    queue,
    (msg) => {
      if (msg === null) return;
      got.push(msg);
      if (got.length === count) all();
    },
    { noAck: true },
  );
  await done;
  await ch.cancel(consumerTag);
  return got;
}
