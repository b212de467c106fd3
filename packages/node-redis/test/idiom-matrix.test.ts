// The node-redis idioms a service uses, each run from two environments interleaved in the same tick
// (feature-1, routed to a second redis-server, and the baseline), read back from the instances.
import { createClient, createClientPool, poolsOf } from '@picop/node-redis';
import { getEnvId, withEnvId } from '@picop/propagator';
import { createProxy } from '@picop/proxy';
import { createClient as createPlainClient, defineScript, RESP_TYPES, WatchError } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Env, inBoth } from '../../../test/support/environments.js';
import { useContextManager } from '../../../test/support/otel-and-tls.js';
import { useServerPair } from '../../../test/support/pair.js';
import { runId } from '../../../test/support/run-id.js';
import { freePort, REDIS_HOST, REDIS_PORT, startRedis } from '../../../test/support/servers.js';

useContextManager();
const run = `picop:node-redis:${runId()}`;
const ENVS: readonly Env[] = ['feature-1', 'main'];

/** A plain node-redis client straight to one instance, to read back what landed there. */
const directTo = (host: string, port: number) =>
  createPlainClient({ socket: { host, port } }).connect();
type Plain = Awaited<ReturnType<typeof directTo>>;

describe('@picop/node-redis idiom matrix', () => {
  const pair = useServerPair(() => startRedis(), `${REDIS_HOST}:${REDIS_PORT}`);
  const direct = {} as Record<Env, Plain>;
  const opened: Array<{ isOpen: boolean; destroy(): void }> = [];
  const url = () => `redis://127.0.0.1:${pair.port}`;
  /** A connected client of this package, closed after the file. */
  const connected = async <
    C extends { connect(): Promise<unknown>; isOpen: boolean; destroy(): void },
  >(
    client: C,
  ) => {
    opened.push(client);
    await client.connect();
    return client;
  };
  /** Each instance holds its own environment's value at `key`. */
  const expectLanded = async (key: string) => {
    expect(await direct['feature-1'].get(key)).toBe('feature-1');
    expect(await direct.main.get(key)).toBe('main');
  };

  beforeAll(async () => {
    direct.main = await directTo(REDIS_HOST, REDIS_PORT);
    direct['feature-1'] = await directTo('127.0.0.1', pair.second.port);
  });
  afterAll(async () => {
    // node-redis 5.0 throws when destroying a closed client.
    for (const c of opened) c.isOpen && c.destroy();
    for (const key of await direct.main.keys(`${run}*`)) await direct.main.del(key);
    for (const c of Object.values(direct)) c.destroy();
  });

  it('plain commands, with a url or socket options', async () => {
    for (const client of [
      await connected(createClient({ url: url() })),
      await connected(createClient({ socket: { host: '127.0.0.1', port: pair.port } })),
    ]) {
      await inBoth((env) => client.set(`${run}:plain`, env));
      await expectLanded(`${run}:plain`);
      expect(await inBoth(() => client.get(`${run}:plain`))).toEqual(['feature-1', 'main']);
      expect(await inBoth(() => client.GET(`${run}:plain`))).toEqual(['feature-1', 'main']);
    }
  });

  it('40 SETs from two environments in one tick (pipelined by node-redis)', async () => {
    const client = await connected(createClient({ url: url() }));
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const env = ENVS[i % 2] as Env;
        const set = () => client.set(`${run}:tick:${i}`, env);
        return env === 'main' ? set() : withEnvId(env, set);
      }),
    );
    for (let i = 0; i < 40; i++) {
      const env = ENVS[i % 2] as Env;
      const other = env === 'main' ? 'feature-1' : 'main';
      expect(await direct[env].get(`${run}:tick:${i}`)).toBe(env);
      expect(await direct[other].get(`${run}:tick:${i}`)).toBeNull();
    }
  });

  it('multi()/exec(), execAsPipeline() and WATCH', async () => {
    const client = await connected(createClient({ url: url() }));
    const replies = await inBoth((env) =>
      client.multi().set(`${run}:multi`, env).get(`${run}:multi`).exec(),
    );
    expect(replies).toEqual([
      ['OK', 'feature-1'],
      ['OK', 'main'],
    ]);
    await expectLanded(`${run}:multi`);
    await inBoth((env) => client.multi().set(`${run}:pipeline`, env).execAsPipeline());
    await expectLanded(`${run}:pipeline`);
    // WATCH on the environment's own connection: a write to feature-1's instance aborts it.
    const dup = await connected(client.duplicate());
    await withEnvId('feature-1', () => dup.watch(`${run}:watched`));
    expect(withEnvId('feature-1', () => dup.isWatching)).toBe(true);
    expect(dup.isWatching).toBe(false);
    await direct['feature-1'].set(`${run}:watched`, 'changed');
    await expect(
      withEnvId('feature-1', () => dup.multi().set(`${run}:watched`, 'mine').exec()),
    ).rejects.toBeInstanceOf(WatchError);
    expect(withEnvId('feature-1', () => dup.isWatching)).toBe(false);
  });

  it('scripts (defineScript) and functions (FUNCTION LOAD, then the library’s commands)', async () => {
    const client = await connected(
      createClient({
        url: url(),
        scripts: {
          setEnv: defineScript({
            NUMBER_OF_KEYS: 1,
            SCRIPT: "return redis.call('SET', KEYS[1], ARGV[1])",
            parseCommand(parser, key: string, value: string) {
              parser.pushKey(key);
              parser.push(value);
            },
            transformReply: () => 'OK' as const,
          }),
        },
        functions: {
          picop: {
            setenv: {
              NUMBER_OF_KEYS: 1,
              parseCommand(parser, key: string, value: string) {
                parser.pushKey(key);
                parser.push(value);
              },
              transformReply: () => 'OK' as const,
            },
          },
        },
      }),
    );
    await inBoth((env) => client.setEnv(`${run}:script`, env));
    await expectLanded(`${run}:script`);
    const library = `#!lua name=picop\nredis.register_function('setenv', function(keys, args) return redis.call('SET', keys[1], args[1]) end)`;
    await inBoth(() => client.functionLoad(library, { REPLACE: true }));
    await inBoth((env) => client.picop.setenv(`${run}:function`, env));
    await expectLanded(`${run}:function`);
  });

  it('scanIterator, in each environment its own keys', async () => {
    const client = await connected(createClient({ url: url() }));
    await inBoth(async (env) => {
      for (let i = 0; i < 5; i++) await client.set(`${run}:scan:${env}:${i}`, env);
    });
    const scanned = await inBoth(async () => {
      const keys: string[] = [];
      for await (const batch of client.scanIterator({ MATCH: `${run}:scan:*`, COUNT: 2 })) {
        keys.push(...batch);
      }
      return new Set(keys.map((k) => k.split(':').at(-2)));
    });
    expect(scanned).toEqual([new Set(['feature-1']), new Set(['main'])]);
  });

  it('subscribe and pSubscribe on a duplicate(): the listener runs in the subscribing environment', async () => {
    const client = await connected(createClient({ url: url() }));
    const sub = await connected(client.duplicate());
    const heard: string[] = [];
    let allHeard!: () => void;
    const all = new Promise<void>((resolve) => {
      allHeard = resolve;
    });
    const listener = (message: string, channel: string) => {
      heard.push(`${channel}:${message}:${getEnvId() ?? 'main'}`);
      if (heard.length === 4) allHeard();
    };
    await inBoth(() => sub.subscribe(`${run}:ch`, listener));
    await inBoth(() => sub.pSubscribe(`${run}:p*`, listener));
    await direct['feature-1'].publish(`${run}:ch`, 'a');
    await direct.main.publish(`${run}:ch`, 'b');
    await direct['feature-1'].publish(`${run}:px`, 'c');
    await direct.main.publish(`${run}:px`, 'd');
    await all;
    expect(heard.sort()).toEqual(
      [
        `${run}:ch:a:feature-1`,
        `${run}:ch:b:main`,
        `${run}:px:c:feature-1`,
        `${run}:px:d:main`,
      ].sort(),
    );
    // unsubscribe with the same listener reaches the environment's own subscription.
    await withEnvId('feature-1', () => sub.unsubscribe(`${run}:ch`, listener));
    // (node-redis 5.0 gives the counts as strings.)
    const subscribers = async (env: Env) =>
      Number(Object.values(await direct[env].pubSubNumSub(`${run}:ch`))[0]);
    expect([await subscribers('feature-1'), await subscribers('main')]).toEqual([0, 1]);
  });

  it('a blocking command on a duplicate() waits on its environment’s instance', async () => {
    const client = await connected(createClient({ url: url() }));
    const blocking = await connected(client.duplicate());
    const popped = inBoth(() => blocking.blPop(`${run}:queue`, 5));
    await inBoth((env) => client.rPush(`${run}:queue`, env));
    expect(await popped).toEqual([
      { key: `${run}:queue`, element: 'feature-1' },
      { key: `${run}:queue`, element: 'main' },
    ]);
  });

  it('RESP3; withTypeMapping() and legacy() made at start-up, used in each environment', async () => {
    const client = await connected(createClient({ url: url(), RESP: 3 }));
    await inBoth((env) => client.hSet(`${run}:hash`, 'env', env));
    expect(await inBoth(() => client.hGetAll(`${run}:hash`))).toEqual([
      { env: 'feature-1' },
      { env: 'main' },
    ]);
    const buffers = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    const read = await inBoth(() => buffers.hGet(`${run}:hash`, 'env'));
    expect(read).toEqual([Buffer.from('feature-1'), Buffer.from('main')]);
    // The callback interface, made at start-up too.
    const legacy = client.legacy();
    await inBoth(
      (env) =>
        new Promise((resolve, reject) =>
          legacy.set(`${run}:legacy`, env, (err: unknown) => (err ? reject(err) : resolve(env))),
        ),
    );
    await expectLanded(`${run}:legacy`);
  });

  it('createClientPool: commands, execute() and multi() on each environment’s own pool', async () => {
    const pool = await connected(createClientPool({ url: url() }, { minimum: 1, maximum: 4 }));
    await inBoth((env) => pool.set(`${run}:pool`, env));
    await expectLanded(`${run}:pool`);
    await inBoth((env) =>
      pool.execute(async (client) => {
        await client.watch(`${run}:pool-tx`);
        return client.multi().set(`${run}:pool-tx`, env).exec();
      }),
    );
    await expectLanded(`${run}:pool-tx`);
    await inBoth((env) => pool.multi().set(`${run}:pool-multi`, env).exec());
    await expectLanded(`${run}:pool-multi`);
    expect(poolsOf(pool)?.size).toBe(1);
    await pool.close();
    expect(poolsOf(pool)?.size).toBe(0);
  });

  it('close() closes every environment; connect() again serves both', async () => {
    const client = await connected(createClient({ url: url() }));
    await inBoth((env) => client.set(`${run}:reopen`, env));
    expect(poolsOf(client)?.size).toBe(1);
    await client.close();
    expect(poolsOf(client)?.size).toBe(0);
    await expect(withEnvId('feature-1', () => client.get(`${run}:reopen`))).rejects.toThrow(
      'The client is closed',
    );
    expect(await client.connect()).toBe(client);
    expect(await inBoth(() => client.get(`${run}:reopen`))).toEqual(['feature-1', 'main']);
  });

  it('a reconnect starts with the header again', async () => {
    const client = await connected(createClient({ url: url() }));
    const closed = new Promise<unknown>((resolve) =>
      client.on('error', (_err, env) => resolve(env)),
    );
    const id = await withEnvId('feature-1', () => client.clientId());
    await direct['feature-1'].clientKill({ filter: 'ID', id });
    // node-redis reports the lost socket, then reconnects: the report names the environment.
    expect(await closed).toBe('feature-1');
    await withEnvId('feature-1', () => client.set(`${run}:again`, 'feature-1'));
    expect(await direct['feature-1'].get(`${run}:again`)).toBe('feature-1');
    expect(await direct.main.get(`${run}:again`)).toBeNull();
  });

  it("an environment's connection error is emitted with its Env-Id after it", async () => {
    const dead = await freePort();
    const proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${REDIS_HOST}:${REDIS_PORT}`,
      routes: { 'feature-2': `127.0.0.1:${dead}` },
    });
    const { port } = await proxy.listen();
    try {
      const client = await connected(
        createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } }),
      );
      const failed = new Promise<unknown[]>((resolve) => client.on('error', (...a) => resolve(a)));
      const command = withEnvId('feature-2', () => client.ping());
      const [err, envId] = await failed;
      expect(err).toBeInstanceOf(Error);
      expect(envId).toBe('feature-2');
      await expect(command).rejects.toThrow();
      expect(await client.ping()).toBe('PONG');
    } finally {
      await proxy.close(10);
    }
  });
});
