// The amqplib idioms a service uses, each run from two environments interleaved in the same tick
// (feature-1, routed to a second RabbitMQ node, and the baseline), read back from each broker.
import { connect, contextOfMessage, type PicopConnection } from '@picop/amqp';
import { getEnvId, withEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import amqplib, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { inBoth } from '../../../test/support/environments.js';
import { useContextManager } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import { AMQP_URL, type ExtraServer, startRabbitmq } from '../../../test/support/servers.js';

useContextManager();
const run = `picop-matrix-${runId()}`;
const broker = new URL(AMQP_URL);

describe('@picop/amqp idiom matrix', () => {
  let second: ExtraServer;
  let proxy: PicopProxy;
  let url: string;
  let mainBroker: ChannelModel;
  let featureBroker: ChannelModel;
  let main: Channel;
  let feature: Channel;
  const open: Array<{ close(): Promise<void> }> = [];

  /** A service's connection, opened at start-up (no request, no Env-Id). */
  const service = async (): Promise<PicopConnection> => {
    const conn = (await connect(url)) as unknown as PicopConnection;
    open.push(conn);
    return conn;
  };
  /** A queue of that name on both brokers. */
  const queueOnBoth = async (name: string) => {
    for (const ch of [main, feature]) await ch.assertQueue(name, { autoDelete: false });
    return name;
  };
  /** The bodies each broker holds in `queue`: feature-1's on its broker, main's on the default. */
  const drain = async (ch: Channel, queue: string) => {
    const bodies: string[] = [];
    for (
      let msg = await ch.get(queue, { noAck: true });
      msg;
      msg = await ch.get(queue, { noAck: true })
    )
      bodies.push(msg.content.toString());
    return bodies;
  };
  const expectLanded = async (queue: string, count = 1) => {
    expect(await drain(feature, queue)).toEqual(Array(count).fill('feature-1'));
    expect(await drain(main, queue)).toEqual(Array(count).fill('main'));
  };

  beforeAll(async () => {
    second = await startRabbitmq();
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${broker.hostname}:${broker.port || 5672}`,
      routes: { 'feature-1': `127.0.0.1:${second.port}` },
    });
    const { port } = await proxy.listen();
    url = `amqp://guest:guest@127.0.0.1:${port}`;
    mainBroker = await amqplib.connect(AMQP_URL);
    featureBroker = await amqplib.connect(`amqp://guest:guest@127.0.0.1:${second.port}`);
    main = await mainBroker.createChannel();
    feature = await featureBroker.createChannel();
  }, 180_000);
  afterAll(async () => {
    for (const c of open) await c.close().catch(() => undefined);
    await mainBroker?.close();
    await featureBroker?.close();
    await proxy?.close(100);
    await second?.stop();
  }, 60_000);

  it('a channel opened at start-up: sendToQueue goes over each environment connection', async () => {
    const queue = await queueOnBoth(`${run}-send`);
    const ch = await (await service()).createChannel();
    await inBoth(async (env) => ch.sendToQueue(queue, Buffer.from(env)));
    await inBoth(async (env) => ch.sendToQueue(queue, Buffer.from(env)));
    // Published before the side channel opened and after: all there, in order.
    await ch.close();
    await expectLanded(queue, 2);
  });

  it('publish to an exchange from the start-up channel', async () => {
    const queue = await queueOnBoth(`${run}-publish`);
    for (const c of [main, feature]) {
      await c.assertExchange(`${run}-x`, 'direct', { autoDelete: true });
      await c.bindQueue(queue, `${run}-x`, 'k');
    }
    const ch = await (await service()).createChannel();
    await inBoth(async (env) => ch.publish(`${run}-x`, 'k', Buffer.from(env)));
    await ch.close();
    await expectLanded(queue);
  });

  it('a confirm channel opened at start-up keeps per-message confirms, and waitForConfirms', async () => {
    const queue = await queueOnBoth(`${run}-confirm`);
    const ch: ConfirmChannel = await (await service()).createConfirmChannel();
    const acks = await inBoth(
      (env) =>
        new Promise((resolve, reject) =>
          ch.sendToQueue(queue, Buffer.from(env), {}, (err) => (err ? reject(err) : resolve(env))),
        ),
    );
    expect(acks).toEqual(['feature-1', 'main']);
    await inBoth(async (env) => ch.sendToQueue(queue, Buffer.from(env)));
    await ch.waitForConfirms();
    await expectLanded(queue, 2);
  });

  it("a confirm channel to an unreachable environment's broker: the callback gets the error", async () => {
    const conn = await service();
    const ch = await conn.createConfirmChannel();
    proxy.routes.set('feature-dead', '127.0.0.1:1');
    const err = await withEnvId(
      'feature-dead',
      () =>
        new Promise((resolve) =>
          ch.sendToQueue(`${run}-nowhere`, Buffer.from('x'), {}, (e) => resolve(e)),
        ),
    );
    expect(err).toBeInstanceOf(Error);
    proxy.routes.delete('feature-dead');
  });

  it('consume: the handler runs in the message environment, acks on its channel', async () => {
    const queue = await queueOnBoth(`${run}-consume`);
    const consumer = await (await service()).createChannel();
    await consumer.prefetch(1);
    const handled = new Promise<string | undefined>((resolve) =>
      consumer.consume(queue, (msg) => {
        if (!msg) return;
        consumer.ack(msg);
        resolve(getEnvId());
      }),
    );
    // A message from a feature-1 service on the shared (default) broker.
    main.sendToQueue(queue, Buffer.from('m'), { headers: { 'Env-Id': 'feature-1' } });
    expect(await handled).toBe('feature-1');
    await consumer.close();
  });

  it('get() + contextOfMessage()', async () => {
    const queue = await queueOnBoth(`${run}-get`);
    const ch = await (await service()).createChannel();
    main.sendToQueue(queue, Buffer.from('m'), { headers: { 'Env-Id': 'feature-1' } });
    let msg = await ch.get(queue);
    while (msg === false) msg = await ch.get(queue);
    expect(getEnvId(contextOfMessage(msg))).toBe('feature-1');
    ch.ack(msg);
    await ch.close();
  });

  it('RPC with direct reply-to: request and reply stay on the channels that consume them', async () => {
    const queue = await queueOnBoth(`${run}-rpc`);
    const server = await (await service()).createChannel();
    await server.consume(queue, (msg) => {
      if (!msg) return;
      // In the request's environment (feature-1), as a handler's reply is.
      server.sendToQueue(msg.properties.replyTo, Buffer.from(`${getEnvId()}:${msg.content}`), {
        correlationId: msg.properties.correlationId,
      });
      server.ack(msg);
    });
    const client = await (await service()).createChannel();
    const replies = new Map<string, (body: string) => void>();
    await client.consume(
      'amq.rabbitmq.reply-to',
      (msg) => msg && replies.get(msg.properties.correlationId)?.(msg.content.toString()),
      { noAck: true },
    );
    const call = (body: string) =>
      new Promise<string>((resolve) => {
        const id = `${body}-${Math.random()}`;
        replies.set(id, resolve);
        client.sendToQueue(queue, Buffer.from(body), {
          replyTo: 'amq.rabbitmq.reply-to',
          correlationId: id,
        });
      });
    expect(await inBoth((env) => call(env))).toEqual(['feature-1:feature-1', 'undefined:main']);
  });

  it("updateSecret() on every environment's connection, with amqplib's update-secret-ok event", async () => {
    const conn = await service();
    await withEnvId('feature-1', () => conn.open());
    let oks = 0;
    conn.on('update-secret-ok', () => oks++);
    await conn.updateSecret(Buffer.from('guest'), 'rotation');
    expect(oks).toBe(2);
  });

  it('a lost connection with no error listener is reported, never thrown', async () => {
    const own = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${broker.hostname}:${broker.port || 5672}`,
    });
    const { port } = await own.listen();
    const conn = await withEnvId('feature-1', () =>
      connect(`amqp://guest:guest@127.0.0.1:${port}`),
    );
    const reported = new Promise<unknown[]>((resolve) =>
      vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => resolve(args)),
    );
    // Not events.once(): it listens to 'error' itself.
    const closed = new Promise((resolve) => conn.once('close', resolve));
    await own.close(0);
    expect((await reported)[0]).toBe('[@picop/amqp] Unhandled error event (Env-Id feature-1):');
    await closed;
    vi.restoreAllMocks();
  });
});
