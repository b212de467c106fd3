import { getEnvId, withEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { type PicopRedisClientOptions, Redis } from '@picop/redis';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useContextManager } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import {
  type ExtraServer,
  REDIS_HOST,
  REDIS_PORT,
  startRedis,
} from '../../../test/support/servers.js';

useContextManager();
const run = `picop:redis:${runId()}`;

describe('@picop/redis through the PiCoP proxy', () => {
  let second: ExtraServer;
  let proxy: PicopProxy;
  let port: number;
  let direct1: IORedis;
  let direct2: IORedis;
  const clients: Array<{ quit(): Promise<unknown> }> = [];
  const newRedis = (options: PicopRedisClientOptions = {}) => {
    const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 3, ...options });
    clients.push(r);
    return r;
  };
  const startProxy = async (listenPort = 0) => {
    proxy = createProxy({
      listen: `127.0.0.1:${listenPort}`,
      defaultRoute: `${REDIS_HOST}:${REDIS_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${second.port}`, 'feature-2': `127.0.0.1:${second.port}` },
    });
    port = (await proxy.listen()).port;
  };

  beforeAll(async () => {
    second = await startRedis();
    await startProxy();
    direct1 = new IORedis({ host: REDIS_HOST, port: REDIS_PORT });
    direct2 = new IORedis({ host: '127.0.0.1', port: second.port });
  });
  afterAll(async () => {
    for (const c of clients) await c.quit().catch(() => undefined);
    await direct1.del(`${run}:a`, `${run}:p`, `${run}:m`);
    direct1.disconnect();
    direct2.disconnect();
    await proxy.close(100);
    await second.stop();
  });

  it('SET in feature-1 lands in the second instance, without Env-Id in the default one', async () => {
    const redis = newRedis();
    await withEnvId('feature-1', () => redis.set(`${run}:a`, 'feature-1'));
    await redis.set(`${run}:a`, 'baseline');
    expect(await direct2.get(`${run}:a`)).toBe('feature-1');
    expect(await direct1.get(`${run}:a`)).toBe('baseline');
    expect(await withEnvId('feature-1', () => redis.get(`${run}:a`))).toBe('feature-1');
  });

  it('never lets interleaved environments share a connection', async () => {
    const redis = newRedis();
    const seen = new Map<string, Set<number>>();
    const envs = ['feature-1', 'feature-2', 'main'];
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => {
        const env = envs[i % 3] as string;
        return withEnvId(env, async () => {
          const id = (await redis.call('CLIENT', 'ID')) as number;
          seen.set(env, (seen.get(env) ?? new Set()).add(id));
        });
      }),
    );
    // One connection per environment, and feature-1 / feature-2 (same server) never share one.
    expect([...seen.values()].map((s) => s.size)).toEqual([1, 1, 1]);
    expect([...(seen.get('feature-1') as Set<number>)]).not.toEqual([
      ...(seen.get('feature-2') as Set<number>),
    ]);
  });

  it('keeps pipelines and MULTI in the environment they were created in', async () => {
    const redis = newRedis();
    const pipeline = withEnvId('feature-1', () =>
      redis.pipeline().set(`${run}:p`, 'pipelined').get(`${run}:p`),
    );
    const multi = withEnvId('feature-1', () => redis.multi().set(`${run}:m`, 'multi'));
    expect(await pipeline.exec()).toEqual([
      [null, 'OK'],
      [null, 'pipelined'],
    ]);
    expect(await multi.exec()).toEqual([[null, 'OK']]);
    expect(await direct2.mget(`${run}:p`, `${run}:m`)).toEqual(['pipelined', 'multi']);
    expect(await direct1.exists(`${run}:p`, `${run}:m`)).toBe(0);
  });

  it('reconnects with the header after the server kills the connection', async () => {
    const redis = newRedis();
    const id = (await withEnvId('feature-1', () => redis.call('CLIENT', 'ID'))) as number;
    const accepted = proxy.stats().byEnv['feature-1']?.accepted ?? 0;
    await direct2.call('CLIENT', 'KILL', 'ID', String(id));
    await withEnvId('feature-1', () => redis.set(`${run}:a`, 'after-kill'));
    expect(await direct2.get(`${run}:a`)).toBe('after-kill');
    expect(proxy.stats().byEnv['feature-1']?.accepted).toBe(accepted + 1);
  });

  it('reconnects with the header after the proxy restarts', async () => {
    const redis = newRedis();
    await withEnvId('feature-1', () => redis.set(`${run}:a`, 'before-restart'));
    const oldPort = port;
    await proxy.close(0);
    await startProxy(oldPort);
    await withEnvId('feature-1', () => redis.set(`${run}:a`, 'after-restart'));
    expect(await direct2.get(`${run}:a`)).toBe('after-restart');
    // The new proxy saw feature-1 headers (this client's, and earlier tests' clients reconnecting).
    expect(proxy.stats().byEnv['feature-1']?.accepted).toBeGreaterThanOrEqual(1);
  });

  it('delivers pub/sub messages only to their own environment, inside it', async () => {
    const sub = newRedis();
    const pub = newRedis();
    const got: Array<[string, string | undefined, string | undefined]> = [];
    const both = new Promise<void>((resolve) =>
      sub.on('message', (_channel: string, message: string, envId?: string) => {
        if (got.push([message, envId, getEnvId()]) === 2) resolve();
      }),
    );
    await withEnvId('feature-1', () => sub.subscribe(`${run}:news`));
    await sub.subscribe(`${run}:news`);
    await withEnvId('feature-1', () => pub.publish(`${run}:news`, 'for feature-1'));
    await pub.publish(`${run}:news`, 'for baseline');
    await both;
    expect(got.sort()).toEqual([
      ['for baseline', undefined, undefined],
      ['for feature-1', 'feature-1', 'feature-1'],
    ]);
  });

  it('holds at most maxPools connections for 10,000 distinct Env-Ids', async () => {
    const redis = newRedis({ picop: { maxPools: 4 } });
    let most = 0;
    for (let i = 0; i < 10_000; i++) {
      await withEnvId(`tenant-${i}`, () => redis.ping());
      most = Math.max(most, redis.pools?.size ?? 0);
    }
    expect(most).toBe(4);
    expect(redis.pools?.evicted).toBe(10_000 - 4);
    const connected = ((await direct1.call('CLIENT', 'LIST')) as string)
      .split('\n')
      .filter(Boolean).length;
    expect(connected).toBeLessThan(50);
  }, 120_000);

  it("reports ioredis's own errors unchanged", async () => {
    const redis = newRedis();
    await withEnvId('feature-1', () => redis.set(`${run}:a`, 'x'));
    const err = await withEnvId('feature-1', () => redis.lpush(`${run}:a`, 'y')).catch((e) => e);
    expect(err.name).toBe('ReplyError');
    expect(err.message).toMatch(/^WRONGTYPE/);
  });

  it('rejects commands after quit() and refuses Sentinel or a unix socket', async () => {
    const redis = newRedis();
    await redis.ping();
    expect(await redis.quit()).toBe('OK');
    await expect(redis.ping()).rejects.toThrow('Connection is closed.');
    await expect(withEnvId('feature-1', () => redis.ping())).rejects.toThrow(
      'Connection is closed.',
    );
    expect(() => new Redis({ sentinels: [{ host: 'x', port: 1 }], name: 'm' })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
    expect(() => new Redis({ path: '/tmp/redis.sock' })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
  });

  it('duplicate() keeps the picop options', async () => {
    const redis = newRedis({ picop: { maxPools: 2 } });
    const copy = redis.duplicate();
    clients.push(copy);
    await withEnvId('feature-1', () => copy.set(`${run}:a`, 'from-duplicate'));
    expect(await direct2.get(`${run}:a`)).toBe('from-duplicate');
    expect(copy).toBeInstanceOf(Redis);
  });
});
