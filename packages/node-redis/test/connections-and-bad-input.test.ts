// What is not the idiom matrix: TLS after the header, proxyless routes, picop: false, the socket
// self-check, and every bad input a typed error that opens nothing.
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, createCluster, createSentinel, poolsOf } from '@picop/node-redis';
import { withEnvId } from '@picop/propagator';
import { createProxy } from '@picop/proxy';
import { createClient as createPlainClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inBoth } from '../../../test/support/environments.js';
import { selfSignedCert, useContextManager } from '../../../test/support/otel-and-tls.js';
import { useServerPair } from '../../../test/support/pair.js';
import { runId } from '../../../test/support/run-id.js';
import {
  type ExtraServer,
  REDIS_HOST,
  REDIS_PORT,
  startRedis,
} from '../../../test/support/servers.js';
import { checkSockets } from '../src/socket-hook.js';

useContextManager();
const run = `picop:node-redis-conn:${runId()}`;
// The peer-range project runs these tests on redis 5.0.1 (PEER_VERSION).
const REDIS_5 = process.env.PEER_VERSION?.startsWith('5.') === true;
const directTo = (host: string, port: number) =>
  createPlainClient({ socket: { host, port } }).connect();

describe('@picop/node-redis connections', () => {
  const pair = useServerPair(() => startRedis(), `${REDIS_HOST}:${REDIS_PORT}`);
  let main: Awaited<ReturnType<typeof directTo>>;
  let feature: Awaited<ReturnType<typeof directTo>>;
  beforeAll(async () => {
    main = await directTo(REDIS_HOST, REDIS_PORT);
    feature = await directTo('127.0.0.1', pair.second.port);
  });
  afterAll(async () => {
    for (const key of await main.keys(`${run}*`)) await main.del(key);
    main.destroy();
    feature.destroy();
  });

  it('rediss: the header in clear, then TLS to the environment’s own server', async () => {
    const { cert, key } = selfSignedCert();
    const dir = await mkdtemp(join(tmpdir(), 'picop-redis-tls-'));
    writeFileSync(join(dir, 'cert.pem'), cert);
    writeFileSync(join(dir, 'key.pem'), key);
    const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
    const servers: ExtraServer[] = [
      await startRedis(undefined, files),
      await startRedis(undefined, files),
    ];
    const proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `127.0.0.1:${servers[0]?.port}`,
      routes: { 'feature-1': `127.0.0.1:${servers[1]?.port}` },
    });
    const { port } = await proxy.listen();
    const client = createClient({
      url: `rediss://localhost:${port}`,
      socket: { tls: true, ca: cert },
    });
    try {
      await client.connect();
      await inBoth((env) => client.set(`${run}:tls`, env));
      const read = async (server: ExtraServer | undefined) => {
        const c = await createPlainClient({
          url: `rediss://localhost:${server?.port}`,
          socket: { tls: true, ca: cert },
        }).connect();
        const value = await c.get(`${run}:tls`);
        c.destroy();
        return value;
      };
      expect([await read(servers[1]), await read(servers[0])]).toEqual(['feature-1', 'main']);
    } finally {
      client.destroy();
      await proxy.close(10);
      for (const s of servers) await s.stop();
    }
  });

  it('picop.routes: each environment straight to its own Redis, no proxy, no header', async () => {
    const client = createClient({
      socket: { host: REDIS_HOST, port: REDIS_PORT },
      picop: { routes: { table: { 'feature-1': `127.0.0.1:${pair.second.port}` } } },
    });
    try {
      await client.connect();
      await inBoth((env) => client.set(`${run}:routes`, env));
      expect(await feature.get(`${run}:routes`)).toBe('feature-1');
      expect(await main.get(`${run}:routes`)).toBe('main');
    } finally {
      client.destroy();
    }
  });

  it('picop.isolate.db: each environment in a database of its own; never the baseline’s', async () => {
    const client = createClient({
      url: `redis://${REDIS_HOST}:${REDIS_PORT}/0`,
      picop: {
        routes: { table: {} },
        isolate: {
          db: (envId) => (envId === 'feature-1' ? 5 : envId === 'feature-2' ? 0 : undefined),
        },
      },
    });
    const db5 = await createPlainClient({
      socket: { host: REDIS_HOST, port: REDIS_PORT },
      database: 5,
    }).connect();
    try {
      await client.connect();
      await inBoth((env) => client.set(`${run}:isolated`, env));
      expect(await db5.get(`${run}:isolated`)).toBe('feature-1');
      expect(await main.get(`${run}:isolated`)).toBe('main');
      // feature-2 would share the baseline's database; feature.3 cannot name one.
      for (const envId of ['feature-2', 'feature.3']) {
        await expect(withEnvId(envId, () => client.get(`${run}:isolated`))).rejects.toMatchObject({
          code: 'ERR_PICOP_INVALID_ARG',
        });
      }
    } finally {
      await db5.del(`${run}:isolated`);
      db5.destroy();
      client.destroy();
    }
  });

  it.skipIf(REDIS_5)(
    'picop.isolate.keyPrefix: picop-env:<Env-Id>: after the client’s own prefix; the baseline cannot name it',
    async () => {
      const client = createClient({
        url: `redis://${REDIS_HOST}:${REDIS_PORT}`,
        keyPrefix: `${run}:`,
        picop: { routes: { table: {} }, isolate: { keyPrefix: true } },
      });
      try {
        await client.connect();
        await inBoth((env) => client.set('cart', env));
        expect(await main.get(`${run}:picop-env:feature-1:cart`)).toBe('feature-1');
        expect(await main.get(`${run}:cart`)).toBe('main');
        // The baseline cannot reach feature-1's keys: commands, transactions, raw commands, views.
        const refused = { code: 'ERR_PICOP_INVALID_ARG' };
        await expect(client.get('picop-env:feature-1:cart')).rejects.toMatchObject(refused);
        await expect(
          client.multi().set('picop-env:feature-1:cart', 'x').exec(),
        ).rejects.toMatchObject(refused);
        await expect(
          client.sendCommand(['GET', `${run}:picop-env:feature-1:cart`]),
        ).rejects.toMatchObject(refused);
        await expect(
          client.withTypeMapping({}).del('picop-env:feature-1:cart'),
        ).rejects.toMatchObject(refused);
        expect(await main.get(`${run}:picop-env:feature-1:cart`)).toBe('feature-1');
      } finally {
        client.destroy();
      }
    },
  );

  it('picop: false is node-redis itself, straight to Redis', async () => {
    const client = createClient({ socket: { host: REDIS_HOST, port: REDIS_PORT }, picop: false });
    await client.connect();
    expect(poolsOf(client)).toBeUndefined();
    await withEnvId('feature-1', () => client.set(`${run}:off`, 'x'));
    expect(await main.get(`${run}:off`)).toBe('x');
    client.destroy();
  });

  it('a client whose socket skipped the header is destroyed at connect, before any command', async () => {
    const plain = createPlainClient({ socket: { host: REDIS_HOST, port: REDIS_PORT } });
    const failures: Array<{ code?: string; message: string }> = [];
    checkSockets(plain, '@picop/node-redis', (err) => failures.push(err));
    plain.on('error', () => {});
    await plain.connect().catch(() => undefined);
    expect(failures).toMatchObject([
      {
        code: 'ERR_PICOP_UNSUPPORTED',
        message: expect.stringMatching(/does not support redis \d/),
      },
    ]);
    expect(plain.isOpen).toBe(false);
  });
});

describe('@picop/node-redis bad input', () => {
  /** Connections the default Redis holds now. */
  const connections = async () => {
    const c = await directTo(REDIS_HOST, REDIS_PORT);
    const count = (await c.clientList()).length - 1;
    c.destroy();
    return count;
  };

  it('options a header cannot go with: typed errors, nothing opened', async () => {
    const before = await connections();
    const attempts = [
      () => createClient({ socket: { tls: false, path: '/tmp/redis.sock' } }),
      () => createClient({ url: 'unix:///tmp/redis.sock' }),
      () => createClient({ picop: { envId: 'feature 1' } }),
      () => createClient({ picop: { maxPools: 0 } }),
      // node-redis 5 has no keyPrefix to isolate with (with 6, a client that never connects).
      () => createClient({ picop: { isolate: { keyPrefix: true } } }),
    ];
    const codes = attempts.map((attempt) => {
      try {
        attempt();
        return 'no error';
      } catch (err) {
        return (err as { code?: string }).code;
      }
    });
    expect(codes).toEqual([
      'ERR_PICOP_INVALID_ARG',
      'ERR_PICOP_INVALID_ARG',
      'ERR_PICOP_INVALID_ARG',
      'ERR_PICOP_INVALID_ARG',
      REDIS_5 ? 'ERR_PICOP_UNSUPPORTED' : 'no error',
    ]);
    expect(await connections()).toBe(before);
    expect(createCluster).toThrow(expect.objectContaining({ code: 'ERR_PICOP_UNSUPPORTED' }));
    expect(createSentinel).toThrow(expect.objectContaining({ code: 'ERR_PICOP_UNSUPPORTED' }));
  });

  it('a full pool: work of one more environment fails with ERR_PICOP_TOO_MANY_CONTEXTS', async () => {
    const client = createClient({
      socket: { host: REDIS_HOST, port: REDIS_PORT },
      picop: { maxPools: 1, routes: { table: {} } },
    });
    try {
      await client.connect();
      // feature-1's connection is busy: subscribed.
      await withEnvId('feature-1', () => client.subscribe(`${run}:busy`, () => {}));
      await expect(withEnvId('feature-2', () => client.get(`${run}:x`))).rejects.toMatchObject({
        code: 'ERR_PICOP_TOO_MANY_CONTEXTS',
      });
      // The baseline is never refused.
      expect(await client.ping()).toBe('PONG');
      // Synchronous methods throw it; iterators fail on their first step.
      expect(() => withEnvId('feature-2', () => client.multi())).toThrow(
        expect.objectContaining({ code: 'ERR_PICOP_TOO_MANY_CONTEXTS' }),
      );
      const iterator = withEnvId('feature-2', () => client.scanIterator());
      await expect(iterator.next()).rejects.toMatchObject({ code: 'ERR_PICOP_TOO_MANY_CONTEXTS' });
    } finally {
      client.destroy();
    }
  });
});
