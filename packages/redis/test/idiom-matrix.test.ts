// The ioredis idioms a service uses, each run from two environments interleaved in the same tick
// (feature-1, routed to a second redis-server, and the baseline), read back from the instances.
import { once } from 'node:events';
import { getEnvId, withEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { type PicopRedisClientOptions, Redis } from '@picop/redis';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Env, inBoth } from '../../../test/support/environments.js';
import { useContextManager } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import {
  type ExtraServer,
  freePort,
  REDIS_HOST,
  REDIS_PORT,
  startRedis,
} from '../../../test/support/servers.js';

useContextManager();
const run = `picop:matrix:${runId()}`;
const ENVS: readonly Env[] = ['feature-1', 'main'];

describe('@picop/redis idiom matrix', () => {
  let second: ExtraServer;
  let proxy: PicopProxy;
  let port: number;
  let main: IORedis;
  let feature: IORedis;
  const clients: Array<{ disconnect(): void }> = [];
  const newRedis = (options: PicopRedisClientOptions = {}) => {
    const r = new Redis({ host: '127.0.0.1', port, ...options });
    clients.push(r);
    return r;
  };
  const direct = (env: Env) => (env === 'main' ? main : feature);
  /** Each instance holds its own environment's value at `key`. */
  const expectLanded = async (key: string) => {
    expect(await feature.get(key)).toBe('feature-1');
    expect(await main.get(key)).toBe('main');
  };

  beforeAll(async () => {
    second = await startRedis();
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${REDIS_HOST}:${REDIS_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${second.port}` },
    });
    port = (await proxy.listen()).port;
    main = new IORedis({ host: REDIS_HOST, port: REDIS_PORT });
    feature = new IORedis({ host: '127.0.0.1', port: second.port });
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    const keys = await main.keys(`${run}*`);
    if (keys.length > 0) await main.del(...keys);
    main.disconnect();
    feature.disconnect();
    await proxy.close(100);
    await second.stop();
  });

  it('plain commands', async () => {
    const redis = newRedis();
    await inBoth((env) => redis.set(`${run}:plain`, env));
    await expectLanded(`${run}:plain`);
    expect(await inBoth(() => redis.get(`${run}:plain`))).toEqual(['feature-1', 'main']);
  });

  it('enableAutoPipelining: 40 SETs from two environments in one tick', async () => {
    const redis = newRedis({ enableAutoPipelining: true });
    await redis.ping();
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const env = ENVS[i % 2] as Env;
        const set = () => redis.set(`${run}:auto:${i}`, env);
        return env === 'main' ? set() : withEnvId(env, set);
      }),
    );
    for (let i = 0; i < 40; i++) {
      const env = ENVS[i % 2] as Env;
      const other = env === 'main' ? 'feature-1' : 'main';
      expect(await direct(env).get(`${run}:auto:${i}`)).toBe(env);
      expect(await direct(other).exists(`${run}:auto:${i}`)).toBe(0);
    }
  });

  it('pipeline()', async () => {
    const redis = newRedis();
    const results = await inBoth((env) =>
      redis.pipeline().set(`${run}:pipe`, env).get(`${run}:pipe`).exec(),
    );
    expect(results.map((r) => r?.[1])).toEqual([
      [null, 'feature-1'],
      [null, 'main'],
    ]);
    await expectLanded(`${run}:pipe`);
  });

  it('multi()', async () => {
    const redis = newRedis();
    await inBoth((env) => redis.multi().set(`${run}:multi`, env).exec());
    await expectLanded(`${run}:multi`);
  });

  it('defineCommand() Lua scripts, alone, in pipelines and auto-pipelined', async () => {
    const redis = newRedis({ enableAutoPipelining: true });
    redis.defineCommand('setenv', {
      numberOfKeys: 1,
      lua: "redis.call('SET', KEYS[1], ARGV[1]); return ARGV[1]",
    });
    const scripted = redis as Redis & {
      setenv(key: string, value: string): Promise<string>;
    };
    expect(await inBoth((env) => scripted.setenv(`${run}:lua`, env))).toEqual([
      'feature-1',
      'main',
    ]);
    await expectLanded(`${run}:lua`);
    await inBoth((env) =>
      (
        redis.pipeline() as unknown as {
          setenv(k: string, v: string): { exec(): Promise<unknown> };
        }
      )
        .setenv(`${run}:lua-pipe`, env)
        .exec(),
    );
    await expectLanded(`${run}:lua-pipe`);
  });

  it('scanStream() and hscanStream()', async () => {
    const redis = newRedis();
    await feature.set(`${run}:scan:f`, '1');
    await main.set(`${run}:scan:m`, '1');
    await feature.hset(`${run}:hash`, 'f', '1');
    await main.hset(`${run}:hash`, 'm', '1');
    const collect = async (stream: AsyncIterable<unknown>) => {
      const items: string[] = [];
      for await (const batch of stream) items.push(...(batch as string[]));
      return items;
    };
    expect(await inBoth(() => collect(redis.scanStream({ match: `${run}:scan:*` })))).toEqual([
      [`${run}:scan:f`],
      [`${run}:scan:m`],
    ]);
    expect(await inBoth(() => collect(redis.hscanStream(`${run}:hash`)))).toEqual([
      ['f', '1'],
      ['m', '1'],
    ]);
  });

  it('blocking commands: BLPOP on a duplicate()', async () => {
    const redis = newRedis();
    const blocking = redis.duplicate();
    clients.push(blocking);
    const popped = inBoth(() => blocking.blpop(`${run}:queue`, 5));
    // Each BLPOP waits on its own instance: wait until both servers count a blocked client.
    for (const client of [main, feature]) {
      while (!/blocked_clients:[1-9]/.test(await client.info('clients'))) await client.ping();
    }
    await feature.lpush(`${run}:queue`, 'feature-1');
    await main.lpush(`${run}:queue`, 'main');
    expect(await popped).toEqual([
      [`${run}:queue`, 'feature-1'],
      [`${run}:queue`, 'main'],
    ]);
  });

  it('pub/sub: subscribe and psubscribe, each handler inside its message environment', async () => {
    const sub = newRedis();
    const got: string[] = [];
    const all = new Promise<void>((resolve) => {
      const record = (message: string) => {
        got.push(`${message}@${getEnvId()}`);
        if (got.length === 4) resolve();
      };
      sub.on('message', (_channel: string, message: string) => record(message));
      sub.on('pmessage', (_pattern: string, _channel: string, message: string) =>
        record(`p:${message}`),
      );
    });
    await inBoth(() => sub.subscribe(`${run}:news`));
    await inBoth(() => sub.psubscribe(`${run}:new*`));
    await feature.publish(`${run}:news`, 'feature-1');
    await main.publish(`${run}:news`, 'main');
    await all;
    expect(got.sort()).toEqual([
      'feature-1@feature-1',
      'main@undefined',
      'p:feature-1@feature-1',
      'p:main@undefined',
    ]);
  });

  it('keyPrefix', async () => {
    const redis = newRedis({ keyPrefix: `${run}:prefix:` });
    await inBoth((env) => redis.set('k', env));
    await expectLanded(`${run}:prefix:k`);
  });

  it('Buffer replies', async () => {
    const redis = newRedis();
    await inBoth((env) => redis.set(`${run}:buf`, env));
    const replies = await inBoth(() => redis.getBuffer(`${run}:buf`));
    expect(replies.map((b) => Buffer.isBuffer(b) && b.toString())).toEqual(['feature-1', 'main']);
  });

  it('call()', async () => {
    const redis = newRedis();
    await inBoth((env) => redis.call('SET', `${run}:call`, env));
    await expectLanded(`${run}:call`);
  });

  it('lazyConnect: nothing opens until the first command, which lands in its environment', async () => {
    const redis = newRedis({ lazyConnect: true });
    expect(redis.status).toBe('wait');
    await inBoth((env) => redis.set(`${run}:lazy`, env));
    await expectLanded(`${run}:lazy`);
  });

  it('the offline queue before the first connect', async () => {
    const redis = newRedis();
    expect(redis.status).not.toBe('ready');
    await inBoth((env) => redis.set(`${run}:offline`, env));
    await expectLanded(`${run}:offline`);
  });

  it('monitor() watches its own environment instance', async () => {
    const redis = newRedis();
    const monitor = await withEnvId('feature-1', () => redis.monitor());
    const seen: string[] = [];
    const sawFeature = new Promise<void>((resolve) =>
      monitor.on('monitor', (_time: string, args: string[]) => {
        seen.push(String(args[1]));
        if (args[1] === `${run}:mon:f`) resolve();
      }),
    );
    await main.get(`${run}:mon:m`);
    await feature.get(`${run}:mon:f`);
    await sawFeature;
    expect(seen).not.toContain(`${run}:mon:m`);
    monitor.disconnect();
  });

  it('connects eagerly as ioredis does: ready and status, and errors before any command', async () => {
    const redis = newRedis();
    await once(redis, 'ready');
    expect(redis.status).toBe('ready');
    const nowhere = new Redis({
      host: '127.0.0.1',
      port: await freePort(),
      retryStrategy: () => null,
    });
    const [err] = await once(nowhere, 'error');
    expect(err).toMatchObject({ code: 'ECONNREFUSED' });
    await once(nowhere, 'end');
    expect(nowhere.status).toBe('end');
  });

  it('after quit(), commands fail with ioredis own error until connect()', async () => {
    const redis = newRedis();
    await inBoth((env) => redis.set(`${run}:quit`, env));
    expect(await redis.quit()).toBe('OK');
    for (const get of [
      () => redis.get(`${run}:quit`),
      () => withEnvId('feature-1', () => redis.get(`${run}:quit`)),
    ]) {
      await expect(get()).rejects.toThrow('Connection is closed.');
    }
    expect(() => redis.pipeline()).not.toThrow();
    await redis.connect();
    expect(await inBoth(() => redis.get(`${run}:quit`))).toEqual(['feature-1', 'main']);
  });

  it('showFriendlyErrorStack: the stack starts at the caller, as in ioredis', async () => {
    const redis = newRedis({ showFriendlyErrorStack: true });
    const errors = await inBoth(() =>
      redis.call('SET', `${run}:only-key`).then(
        () => new Error('resolved'),
        (e: Error) => e,
      ),
    );
    for (const err of errors) {
      const lines = String(err.stack).split('\n');
      expect(lines[0]).toContain('ReplyError');
      expect(lines[1]).toContain('idiom-matrix.test.ts');
    }
  });

  it('connect() while connecting rejects, as in ioredis', async () => {
    const redis = newRedis();
    await expect(redis.connect()).rejects.toThrow(/already connecting|connected/);
  });
});
