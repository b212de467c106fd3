// The mqtt.js idioms a service uses, each run from two environments interleaved in the same tick
// (feature-1, routed to a second Mosquitto, and the baseline), read back from each broker directly.
import {
  type ClientOptions,
  connectAsync,
  type PicopMqttClient,
  type PicopMqttOptions,
} from '@picop/mqtt';
import { getEnvId, withEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { Redis } from '@picop/redis';
import { Redis as IORedis } from 'ioredis';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inBoth } from '../../../test/support/environments.js';
import { useContextManager } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import {
  type ExtraServer,
  MQTT_PORT,
  REDIS_PORT,
  startMosquitto,
  startRedis,
} from '../../../test/support/servers.js';
import { next, Observer } from './helpers.js';

useContextManager();
const run = `picop-matrix-${runId()}`;

describe('@picop/mqtt idiom matrix', () => {
  let second: ExtraServer;
  let proxy: PicopProxy;
  let url: string;
  let mainBroker: Observer;
  let featureBroker: Observer;
  const open: MqttClient[] = [];

  /** A service's client, connected at start-up (no request, no Env-Id). */
  const service = async (options: ClientOptions<PicopMqttOptions> = {}) => {
    const client = await connectAsync(url, { protocolVersion: 5, ...options });
    open.push(client);
    return client as PicopMqttClient;
  };
  /** What each broker received on `topic`: feature-1's broker first, then the baseline's. */
  const landed = async (topic: string, count = 1) => [
    (await featureBroker.take(topic, count)).map((s) => [s.payload, s.envId ?? null]),
    (await mainBroker.take(topic, count)).map((s) => [s.payload, s.envId ?? null]),
  ];

  beforeAll(async () => {
    second = await startMosquitto();
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `127.0.0.1:${MQTT_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${second.port}` },
    });
    url = `mqtt://127.0.0.1:${(await proxy.listen()).port}`;
    mainBroker = await Observer.start(MQTT_PORT, `${run}/#`);
    featureBroker = await Observer.start(second.port, `${run}/#`);
  }, 60_000);
  afterAll(async () => {
    for (const c of open) await c.endAsync(true).catch(() => undefined);
    await mainBroker?.stop();
    await featureBroker?.stop();
    await proxy?.close(100);
    await second?.stop();
  }, 60_000);

  it.each([0, 1, 2] as const)(
    'a client connected at start-up publishes at QoS %i to the broker of the environment active at the call',
    async (qos) => {
      const client = await service();
      const topic = `${run}/qos${qos}`;
      await inBoth((env) => client.publishAsync(topic, env, { qos }));
      await inBoth((env) => client.publishAsync(topic, env, { qos }));
      expect(await landed(topic, 2)).toEqual([
        [
          ['feature-1', 'feature-1'],
          ['feature-1', 'feature-1'],
        ],
        [
          ['main', null],
          ['main', null],
        ],
      ]);
      expect(client.pools.size).toBe(1);
    },
  );

  it('publish with a callback, and the caller’s options object is not changed', async () => {
    const client = await service();
    const topic = `${run}/callback`;
    const options = { qos: 1 as const, properties: { userProperties: { app: 'shop' } } };
    const acks = await inBoth(
      (env) =>
        new Promise<unknown>((resolve, reject) =>
          client.publish(topic, env, options, (err) => (err ? reject(err) : resolve(env))),
        ),
    );
    expect(acks).toEqual(['feature-1', 'main']);
    expect(options).toEqual({ qos: 1, properties: { userProperties: { app: 'shop' } } });
    expect(await landed(topic)).toEqual([[['feature-1', 'feature-1']], [['main', null]]]);
  });

  it('an Env-Id user property the caller set is kept', async () => {
    const client = await service();
    const topic = `${run}/own-property`;
    await withEnvId('feature-1', () =>
      client.publishAsync(topic, 'x', {
        qos: 1,
        properties: { userProperties: { 'Env-Id': 'feature-2' } },
      }),
    );
    expect((await featureBroker.take(topic, 1)).map((s) => s.envId)).toEqual(['feature-2']);
  });

  it('retained messages land on each environment’s broker', async () => {
    const client = await service();
    const topic = `${run}-retained/state`;
    await inBoth((env) => client.publishAsync(topic, env, { qos: 1, retain: true }));
    // A new subscriber of each broker gets the retained message of its environment only.
    const [onFeature, onMain] = await Promise.all(
      [second.port, MQTT_PORT].map((port) => Observer.start(port, topic)),
    );
    expect((await onFeature!.take(topic, 1)).map((s) => [s.payload, s.retain])).toEqual([
      ['feature-1', true],
    ]);
    expect((await onMain!.take(topic, 1)).map((s) => [s.payload, s.retain])).toEqual([
      ['main', true],
    ]);
    await inBoth(() => client.publishAsync(topic, '', { qos: 1, retain: true }));
    await Promise.all([onFeature!.stop(), onMain!.stop()]);
  });

  it('subscriptions with wildcards: each environment’s on its broker, handlers in that environment', async () => {
    const client = await service();
    const handled: Array<[string, string, string | undefined]> = [];
    client.on('message', (topic, payload) => {
      if (topic.startsWith(`${run}/wild/`)) handled.push([topic, String(payload), getEnvId()]);
    });
    let barriers = 0;
    client.on('message', (topic) => topic === `${run}/barrier` && barriers++);
    await inBoth((env) =>
      client.subscribeAsync([
        env === 'main' ? `${run}/wild/+/x` : `${run}/wild/#`,
        `${run}/barrier`,
      ]),
    );
    const publisher = await service();
    await inBoth((env) => publisher.publishAsync(`${run}/wild/${env}/x`, env, { qos: 1 }));
    await featureBroker.take(`${run}/wild/`, 1);
    await mainBroker.take(`${run}/wild/`, 1);
    while (handled.length < 2) await next(client, 'message');
    expect(handled.sort()).toEqual([
      [`${run}/wild/feature-1/x`, 'feature-1', 'feature-1'],
      [`${run}/wild/main/x`, 'main', undefined],
    ]);
    // An environment connection with a subscription is never closed as idle.
    expect(client.pools.size).toBe(1);
    // Unsubscribing from any context ends the subscription where it was made.
    await client.unsubscribeAsync(`${run}/wild/#`);
    await withEnvId('feature-1', () => client.unsubscribeAsync(`${run}/wild/+/x`));
    await inBoth((env) => publisher.publishAsync(`${run}/wild/${env}/x`, 'again', { qos: 1 }));
    // Then a message on a topic it still subscribes to, on each connection: delivered in order,
    // after the 'again' ones had they been delivered.
    await inBoth((env) => publisher.publishAsync(`${run}/barrier`, env, { qos: 1 }));
    while (barriers < 2) await next(client, 'message');
    expect(handled).toHaveLength(2);
  });

  it('a subscriber writes to Redis in the message’s environment (a shared broker and own brokers)', async () => {
    const redis2 = await startRedis();
    const redisProxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `127.0.0.1:${REDIS_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${redis2.port}` },
    });
    const redis = new Redis({ host: '127.0.0.1', port: (await redisProxy.listen()).port });
    const direct = {
      main: new IORedis({ host: '127.0.0.1', port: REDIS_PORT }),
      'feature-1': new IORedis({ host: '127.0.0.1', port: redis2.port }),
    };
    try {
      // A worker per environment, each with its own Env-Id (feature-1's reaches its own broker).
      const workers = await Promise.all(
        [undefined, 'feature-1'].map((envId) => service({ picop: { envId } })),
      );
      const topic = `${run}/orders`;
      const writes: Array<Promise<unknown>> = [];
      let wrote: () => void = () => {};
      for (const worker of workers) {
        worker.on('message', (_t, payload) => {
          writes.push(redis.set(`${run}:${payload}`, getEnvId() ?? 'main'));
          wrote();
        });
        await worker.subscribeAsync(topic, { qos: 1 });
      }
      const publisher = await service();
      await inBoth((env) => publisher.publishAsync(topic, `from-${env}`, { qos: 1 }));
      // On the baseline's broker, a message another service published in feature-1 (its Env-Id
      // property set by hand, as a non-Node publisher would).
      const plain = await mqtt.connectAsync(`mqtt://127.0.0.1:${MQTT_PORT}`, {
        protocolVersion: 5,
      });
      await plain.publishAsync(topic, 'shared-feature-1', {
        qos: 1,
        properties: { userProperties: { 'Env-Id': 'feature-1' } },
      });
      await plain.endAsync();
      while (writes.length < 3) await new Promise<void>((r) => (wrote = r));
      await Promise.all(writes);
      const where = async (key: string) => ({
        main: await direct.main.get(`${run}:${key}`),
        'feature-1': await direct['feature-1'].get(`${run}:${key}`),
      });
      expect(await where('from-feature-1')).toEqual({ main: null, 'feature-1': 'feature-1' });
      expect(await where('from-main')).toEqual({ main: 'main', 'feature-1': null });
      expect(await where('shared-feature-1')).toEqual({ main: null, 'feature-1': 'feature-1' });
    } finally {
      redis.disconnect();
      direct.main.disconnect();
      direct['feature-1'].disconnect();
      await redisProxy.close(100);
      await redis2.stop();
    }
  });

  it('a client connected inside a request still handles header-less messages in the baseline', async () => {
    const client = await withEnvId('feature-1', () => service());
    const topic = `${run}/connected-in-request`;
    await client.subscribeAsync(topic);
    const got = new Promise((resolve) =>
      client.once('message', () => resolve(getEnvId() ?? 'baseline')),
    );
    const plain = await mqtt.connectAsync(`mqtt://127.0.0.1:${MQTT_PORT}`, { protocolVersion: 5 });
    await plain.publishAsync(topic, 'x', { qos: 1 });
    await plain.endAsync();
    expect(await got).toBe('baseline');
  });

  it('after the broker drops the connection, the client reconnects with the header again', async () => {
    const client = await service({ reconnectPeriod: 100 });
    const topic = `${run}/reconnect`;
    const handled: Array<[string, string | undefined]> = [];
    client.on(
      'message',
      (t, payload) => t === topic && handled.push([String(payload), getEnvId()]),
    );
    await withEnvId('feature-1', () => client.subscribeAsync(topic, { qos: 1 }));
    expect(client.pools.size).toBe(1);
    // feature-1's broker restarts on the same port.
    await featureBroker.stop();
    await second.stop();
    second = await startMosquitto({ port: second.port });
    featureBroker = await Observer.start(second.port, `${run}/#`);
    await withEnvId('feature-1', () => client.publishAsync(topic, 'after', { qos: 1 }));
    expect((await featureBroker.take(topic, 1)).map((s) => [s.payload, s.envId])).toEqual([
      ['after', 'feature-1'],
    ]);
    // Its subscription came back with it, still in feature-1. (mqtt.js resubscribes after sending
    // what was queued while offline, so 'after' may have gone out before the SUBSCRIBE; 'again'
    // goes out after it.)
    await withEnvId('feature-1', () => client.publishAsync(topic, 'again', { qos: 1 }));
    while (!handled.some(([payload]) => payload === 'again')) await next(client, 'message');
    expect(handled.filter(([payload]) => payload === 'again')).toEqual([['again', 'feature-1']]);
  });

  it('a persistent session (clean: false) belongs to its environment’s connection', async () => {
    const clientId = `${run}-persistent`;
    const options: IClientOptions = { clientId, clean: false, protocolVersion: 5 };
    const topic = `${run}/persistent`;
    const first = await connectAsync(url, {
      ...options,
      properties: { sessionExpiryInterval: 60 },
    });
    await withEnvId('feature-1', () => first.subscribeAsync(topic, { qos: 1 }));
    await first.endAsync();
    // While nobody is connected, feature-1's broker keeps the message for session `<id>/feature-1`.
    const plain = await mqtt.connectAsync(`mqtt://127.0.0.1:${second.port}`, {
      protocolVersion: 5,
    });
    await plain.publishAsync(topic, 'kept', { qos: 1 });
    await plain.endAsync();
    const again = await service({ ...options, properties: { sessionExpiryInterval: 60 } });
    const delivered = new Promise<[string, string | undefined]>((resolve) =>
      again.on('message', (_t, payload) => resolve([String(payload), getEnvId()])),
    );
    // The environment's connection opens on its first use and resumes the session.
    await withEnvId('feature-1', () => again.publishAsync(`${run}/wake`, 'x', { qos: 1 }));
    expect(await delivered).toEqual(['kept', 'feature-1']);
  });

  it('10,000 Env-Ids stay within maxPools, each message in its own environment', async () => {
    const client = await service({ picop: { maxPools: 8 } });
    const topic = `${run}/many`;
    let i = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (i < 10_000) {
          const env = `env-${i++}`;
          await withEnvId(env, () => client.publishAsync(topic, env, { qos: 1 }));
          most = Math.max(most, client.pools.size);
        }
      }),
    );
    const seen = await mainBroker.take(topic, 10_000);
    expect(most).toBeLessThanOrEqual(8);
    expect(seen.filter((s) => s.payload !== s.envId)).toEqual([]);
    expect(new Set(seen.map((s) => s.payload)).size).toBe(10_000);
  }, 120_000);

  it('MQTT 3.1.1: routing by connection only, handlers in the connection’s environment', async () => {
    const client = await service({ protocolVersion: 4 });
    const topic = `${run}/v4`;
    const handled: Array<[string, string | undefined]> = [];
    client.on('message', (_t, payload) => handled.push([String(payload), getEnvId()]));
    await inBoth(() => client.subscribeAsync(topic, { qos: 1 }));
    await inBoth((env) => client.publishAsync(topic, env, { qos: 1 }));
    expect(await landed(topic)).toEqual([[['feature-1', null]], [['main', null]]]);
    while (handled.length < 2) await next(client, 'message');
    expect(handled.sort()).toEqual([
      ['feature-1', 'feature-1'],
      ['main', undefined],
    ]);
  });
});
