// What goes on the wire (the header first, or nothing with PiCoP off), TLS after the header,
// selective consumption on one shared broker, and every bad input.
import net from 'node:net';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { connect, connectAsync, contextOfPacket, PicopMqttClient } from '@picop/mqtt';
import { getEnvId, headerForContext, setEnvId, withEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCert, useContextManager } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import { freePort, MQTT_PORT, startMosquitto } from '../../../test/support/servers.js';

useContextManager();
const run = `picop-mqtt-${runId()}`;
const open: MqttClient[] = [];
const track = <T extends MqttClient>(client: T): T => {
  open.push(client);
  return client;
};
afterEach(async () => {
  for (const c of open.splice(0)) await c.endAsync(true).catch(() => undefined);
});

/** A TCP server that records the first bytes of every connection and answers nothing. */
async function firstBytesServer() {
  const firsts: Buffer[] = [];
  const waiters: Array<() => void> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('data', (data) => {
      firsts.push(data);
      for (const wake of waiters.splice(0)) wake();
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    async take(count: number) {
      while (firsts.length < count) await new Promise<void>((r) => waiters.push(r));
      return firsts;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('what goes on the wire', () => {
  it('the baseline connection sends a header without Env-Id; an environment’s, its Env-Id', async () => {
    const server = await firstBytesServer();
    try {
      // Connected inside a request, the client is still the baseline connection.
      const client = track(await withEnvId('feature-1', () => connect(server.url)));
      withEnvId('feature-1', () => client.publish(`${run}/x`, 'x'));
      const starts = (bytes: Buffer, header: Buffer) =>
        bytes.subarray(0, header.length).equals(header);
      const empty = headerForContext(ROOT_CONTEXT);
      const feature1 = headerForContext(setEnvId(ROOT_CONTEXT, 'feature-1'));
      // In whichever order they arrive.
      const firsts = await server.take(2);
      expect(firsts.filter((b) => starts(b, empty))).toHaveLength(1);
      expect(firsts.filter((b) => starts(b, feature1))).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('picop.envId: the baseline connection carries that Env-Id', async () => {
    const server = await firstBytesServer();
    try {
      track(connect(server.url, { picop: { envId: 'feature-2' } }));
      const [first] = await server.take(1);
      const header = headerForContext(setEnvId(ROOT_CONTEXT, 'feature-2'));
      expect(first?.subarray(0, header.length)).toEqual(header);
    } finally {
      await server.close();
    }
  });

  it('picop: false and PICOP_DISABLED=1 give plain mqtt.js: one connection, no header', async () => {
    const server = await firstBytesServer();
    try {
      const off = track(connect(server.url, { picop: false }));
      expect(off).not.toBeInstanceOf(PicopMqttClient);
      withEnvId('feature-1', () => off.publish(`${run}/x`, 'x'));
      process.env.PICOP_DISABLED = '1';
      const disabled = track(connect(server.url));
      delete process.env.PICOP_DISABLED;
      expect(disabled).not.toBeInstanceOf(PicopMqttClient);
      const firsts = await server.take(2);
      expect(firsts.map((b) => b[0])).toEqual([0x10, 0x10]);
    } finally {
      delete process.env.PICOP_DISABLED;
      await server.close();
    }
  });

  it('reads the URL as mqtt.js does: credentials, clientId, port', () => {
    const client = track(
      connect('mqtt://app:s%40cret@127.0.0.1:1?clientId=svc-1', { manualConnect: true }),
    );
    expect(client.options).toMatchObject({
      host: '127.0.0.1',
      port: 1,
      username: 'app',
      password: 's@cret',
      clientId: 'svc-1',
      protocol: 'mqtt',
    });
  });
});

describe('contextOfPacket', () => {
  it('gives the Env-Id a packet’s user properties carry, on top of a base context', () => {
    const packet = {
      cmd: 'publish' as const,
      topic: 't',
      payload: Buffer.alloc(0),
      qos: 0 as const,
      dup: false,
      retain: false,
      properties: { userProperties: { 'env-id': ['feature-3', 'x'] } },
    };
    expect(getEnvId(contextOfPacket(packet))).toBe('feature-3');
    const base = setEnvId(ROOT_CONTEXT, 'main');
    expect(getEnvId(contextOfPacket({ ...packet, properties: {} }, base))).toBe('main');
  });
});

describe('TLS and selective consumption', () => {
  let tlsBroker: Awaited<ReturnType<typeof startMosquitto>>;
  let proxy: PicopProxy;
  let proxyPort: number;
  const { key, cert } = selfSignedCert();

  beforeAll(async () => {
    tlsBroker = await startMosquitto({ tls: { key, cert } });
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `127.0.0.1:${MQTT_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${tlsBroker.port}` },
    });
    proxyPort = (await proxy.listen()).port;
  });
  afterAll(async () => {
    await proxy?.close(100);
    await tlsBroker?.stop();
  });

  it('mqtts: the header in clear, then TLS to the environment’s broker', async () => {
    const client = track(
      await connectAsync(`mqtts://127.0.0.1:${proxyPort}`, {
        ca: cert,
        servername: 'localhost',
        protocolVersion: 5,
        picop: { envId: 'feature-1' },
      }),
    );
    const topic = `${run}/tls`;
    await client.subscribeAsync(topic, { qos: 1 });
    const got = new Promise((resolve) =>
      client.once('message', (_t, payload) => resolve([String(payload), getEnvId()])),
    );
    await client.publishAsync(topic, 'over tls', { qos: 1 });
    expect(await got).toEqual(['over tls', 'feature-1']);
  });

  it('mqtts: a certificate the client does not trust is an error', async () => {
    await expect(
      connectAsync(`mqtts://127.0.0.1:${proxyPort}`, { picop: { envId: 'feature-1' } }),
    ).rejects.toThrow(/self-signed|certificate/);
  });

  it('selective: on one shared broker each message is handled once, by its environment’s consumers', async () => {
    // Every route to the one broker; replicas share a subscription ($share) per environment.
    const shared = createProxy({ listen: '127.0.0.1:0', defaultRoute: `127.0.0.1:${MQTT_PORT}` });
    const url = `mqtt://127.0.0.1:${(await shared.listen()).port}`;
    try {
      const topic = `${run}/selective`;
      const handled: Array<[string, string, string | undefined]> = [];
      // 10 of each kind, each handled once: 40 in all.
      let allHandled: () => void = () => {};
      const done = new Promise<void>((resolve) => (allHandled = resolve));
      const consumers = [
        ['main', undefined],
        ['main', undefined],
        ['feature-1', 'feature-1'],
        ['feature-1', 'feature-1'],
      ] as const;
      for (const [deployment, envId] of consumers) {
        const c = track(
          await connectAsync(url, {
            protocolVersion: 5,
            picop: { envId, selective: true, ownConsumers: ['feature-1'] },
          }),
        );
        c.on('message', (_t, payload) => {
          if (handled.push([String(payload), deployment, getEnvId()]) === 40) allHandled();
        });
        await c.subscribeAsync(`$share/${deployment}/${topic}`, { qos: 1 });
      }
      const publisher = track(await connectAsync(url, { protocolVersion: 5 }));
      const messages = ['none', 'feature-1', 'feature-2', 'main'];
      for (let i = 0; i < 10; i++) {
        for (const env of messages) {
          const send = () => publisher.publishAsync(topic, env, { qos: 1 });
          await (env === 'none' ? send() : withEnvId(env, send));
        }
      }
      await done;
      const count = (payload: string) => handled.filter(([p]) => p === payload);
      expect(count('none').map(([, d, e]) => [d, e])).toEqual(Array(10).fill(['main', undefined]));
      expect(count('main').map(([, d, e]) => [d, e])).toEqual(Array(10).fill(['main', 'main']));
      expect(count('feature-2').map(([, d, e]) => [d, e])).toEqual(
        Array(10).fill(['main', 'feature-2']),
      );
      expect(count('feature-1').map(([, d, e]) => [d, e])).toEqual(
        Array(10).fill(['feature-1', 'feature-1']),
      );
    } finally {
      await shared.close(100);
    }
  });
});

describe('bad input', () => {
  let proxy: PicopProxy;
  let url: string;
  beforeAll(async () => {
    proxy = createProxy({ listen: '127.0.0.1:0', defaultRoute: `127.0.0.1:${MQTT_PORT}` });
    url = `mqtt://127.0.0.1:${(await proxy.listen()).port}`;
  });
  afterAll(() => proxy?.close(100));

  it('transports PiCoP cannot route are refused with ERR_PICOP_UNSUPPORTED', () => {
    const unsupported = { code: 'ERR_PICOP_UNSUPPORTED' };
    expect(() => connect('ws://127.0.0.1:8080')).toThrow(expect.objectContaining(unsupported));
    expect(() => connect('mqtt://127.0.0.1', { socksProxy: 'socks5://x:1080' })).toThrow(
      expect.objectContaining(unsupported),
    );
    expect(() =>
      connect('mqtt://127.0.0.1', { servers: [{ host: 'a', port: 1, protocol: 'wss' }] }),
    ).toThrow(expect.objectContaining(unsupported));
  });

  it('an invalid Env-Id, and selective without MQTT 5, are ERR_PICOP_INVALID_ARG', () => {
    const invalid = expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' });
    expect(() => connect('mqtt://127.0.0.1:1', { picop: { envId: 'bad id' } })).toThrow(invalid);
    expect(() =>
      connect('mqtt://127.0.0.1:1', { manualConnect: true, picop: { selective: true } }),
    ).toThrow(/protocolVersion: 5/);
  });

  it('clean: false without a clientId is refused, as mqtt.js refuses it', () => {
    expect(() => connect('mqtt://127.0.0.1:1', { clean: false })).toThrow(
      'Missing clientId for unclean clients',
    );
  });

  it('publish after end(), and past maxPools busy connections, fail with a code', async () => {
    const client = track(await connectAsync(url, { picop: { maxPools: 1 } }));
    // feature-1's connection holds a subscription: busy, so feature-2 gets no connection.
    await withEnvId('feature-1', () => client.subscribeAsync(`${run}/busy`));
    await expect(
      withEnvId('feature-2', () => client.publishAsync(`${run}/busy`, 'x')),
    ).rejects.toMatchObject({ code: 'ERR_PICOP_TOO_MANY_CONTEXTS' });
    await client.endAsync();
    await expect(
      withEnvId('feature-1', () => client.publishAsync(`${run}/x`, 'x')),
    ).rejects.toMatchObject({ code: 'ERR_PICOP_INVALID_STATE' });
  });

  it('connectAsync rejects when nothing listens, as mqtt.js does', async () => {
    const port = await freePort();
    await expect(connectAsync(`mqtt://127.0.0.1:${port}`, {}, false)).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });
});
