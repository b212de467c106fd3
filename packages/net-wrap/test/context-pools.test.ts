import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { ContextPools, type PoolContext } from '@picop/net-wrap';
import { EnvIdPropagator, setEnvId, withEnvId } from '@picop/propagator';
import type { Routes } from '@picop/routes';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SIGNATURE_HEX } from '../../../test/support/header.js';
import { useContextManager } from './helpers.js';

useContextManager();

interface FakeClient {
  pool: PoolContext;
  busy: boolean;
  destroyed: boolean;
}

function makePools(
  options: Partial<ConstructorParameters<typeof ContextPools<FakeClient>>[0]> = {},
) {
  const destroyed: string[] = [];
  const pools = new ContextPools<FakeClient>({
    create: (pool) => ({ pool, busy: false, destroyed: false }),
    destroy: (client) => {
      client.destroyed = true;
      destroyed.push(client.pool.key);
    },
    isIdle: (client) => !client.busy,
    ...options,
  });
  return { pools, destroyed };
}

const inEnv = (envId: string) => setEnvId(ROOT_CONTEXT, envId);

describe('ContextPools', () => {
  const saved = process.env.PICOP_ENV_ID;
  afterEach(() => {
    if (saved === undefined) delete process.env.PICOP_ENV_ID;
    else process.env.PICOP_ENV_ID = saved;
  });

  it('creates one client per Env-Id on first use and returns it after', () => {
    const { pools } = makePools();
    const a = withEnvId('feature-1', () => pools.acquire());
    expect(withEnvId('feature-1', () => pools.acquire())).toBe(a);
    const b = pools.acquire(inEnv('feature-2'));
    expect(b).not.toBe(a);
    const none = pools.acquire(ROOT_CONTEXT);
    expect([pools.size, pools.created]).toEqual([3, 3]);
    expect(a.pool.envId).toBe('feature-1');
    expect(a.pool.fields.get('env-id')).toBe('feature-1');
    expect(a.pool.header.subarray(15).toString()).toBe('Env-Id:feature-1');
    expect(none.pool.header.toString('hex')).toBe(`${SIGNATURE_HEX}010000`);
    expect(none.pool.envId).toBeUndefined();
  });

  it('returns the caller-owned base client for the context without Env-Id, never counting or closing it', async () => {
    const base: FakeClient = { pool: {} as PoolContext, busy: false, destroyed: false };
    const { pools, destroyed } = makePools({ base, max: 1 });
    expect(pools.acquire(ROOT_CONTEXT)).toBe(base);
    expect(pools.peek(ROOT_CONTEXT)).toBe(base);
    const a = pools.acquire(inEnv('a'));
    expect(pools.acquire(inEnv('b'))).not.toBe(a); // `a` evicted: the base does not count
    expect([pools.size, [...pools.values()].includes(base)]).toEqual([1, false]);
    await pools.clear();
    expect([pools.size, destroyed, base.destroyed]).toEqual([0, ['a', 'b'], false]);
    expect(pools.acquire(inEnv('a'))).not.toBe(a); // usable again after clear()
    await pools.close();
    expect(base.destroyed).toBe(false);
  });

  it('with a fallback Env-Id, the base client is that environment', () => {
    const base: FakeClient = { pool: {} as PoolContext, busy: false, destroyed: false };
    const { pools } = makePools({ base, envId: 'main' });
    expect(pools.acquire(ROOT_CONTEXT)).toBe(base);
    expect(pools.acquire(inEnv('main'))).toBe(base);
    expect(pools.acquire(inEnv('feature-1'))).not.toBe(base);
  });

  it('runs one timer, only while it holds clients', async () => {
    vi.useFakeTimers();
    try {
      const { pools } = makePools();
      expect(vi.getTimerCount()).toBe(0);
      pools.acquire(inEnv('a'));
      pools.acquire(inEnv('b'));
      expect(vi.getTimerCount()).toBe(1);
      await pools.clear();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('closes a client whose route changed once it is idle, not before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'picop-pools-'));
    const file = join(dir, 'routes.json');
    writeFileSync(file, JSON.stringify({ 'feature-1': '10.0.0.1:1' }));
    try {
      const closed = new EventEmitter();
      const { pools, destroyed } = makePools({
        routes: { file },
        destroy: (client) => {
          destroyed.push(client.pool.key);
          closed.emit('closed', client);
        },
      });
      const old = pools.acquire(inEnv('feature-1'));
      old.busy = true;
      expect(old.pool.route?.host).toBe('10.0.0.1');
      const changed = once(pools.routes as Routes, 'change');
      writeFileSync(file, JSON.stringify({ 'feature-1': '10.0.0.2:1' }));
      await changed;
      // Out of the map at once: the next use opens a client at the new route.
      const fresh = pools.acquire(inEnv('feature-1'));
      expect(fresh.pool.route?.host).toBe('10.0.0.2');
      expect(destroyed).toEqual([]); // busy: kept until idle
      const oldClosed = once(closed, 'closed');
      old.busy = false;
      expect(await oldClosed).toEqual([old]);
      expect(fresh.destroyed).toBe(false);
      await pools.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('peek() finds a client without creating one', () => {
    const { pools } = makePools();
    expect(pools.peek(inEnv('a'))).toBeUndefined();
    expect(pools.size).toBe(0);
    const a = pools.acquire(inEnv('a'));
    expect(pools.peek(inEnv('a'))).toBe(a);
    expect(pools.created).toBe(1);
  });

  it('closes the least recently used idle client past max', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const { pools, destroyed } = makePools({ max: 2 });
    const a = pools.acquire(inEnv('a'));
    vi.advanceTimersByTime(2);
    pools.acquire(inEnv('b'));
    vi.advanceTimersByTime(2);
    pools.acquire(inEnv('a')); // a is now the most recently used
    vi.useRealTimers();
    pools.acquire(inEnv('c'));
    expect(destroyed).toEqual(['b']);
    expect(pools.evicted).toBe(1);
    expect(pools.size).toBe(2);
    expect(a.destroyed).toBe(false);
  });

  it('never closes a busy client, and refuses a new context when all are busy', () => {
    const { pools, destroyed } = makePools({ max: 2 });
    pools.acquire(inEnv('a')).busy = true;
    pools.acquire(inEnv('b')).busy = true;
    expect(() => pools.acquire(inEnv('c'))).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_TOO_MANY_CONTEXTS' }),
    );
    expect(destroyed).toEqual([]);
    // Known contexts are still served.
    expect(pools.acquire(inEnv('a')).pool.envId).toBe('a');
  });

  it("reserves the baseline's client: never counted, evicted or refused, whatever the flood", async () => {
    const { pools, destroyed } = makePools({ max: 2 });
    const baseline = pools.acquire(ROOT_CONTEXT);
    pools.acquire(inEnv('a')).busy = true;
    pools.acquire(inEnv('b')).busy = true;
    expect(() => pools.acquire(inEnv('c'))).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_TOO_MANY_CONTEXTS' }),
    );
    expect(pools.acquire(ROOT_CONTEXT)).toBe(baseline);
    // A flood of idle environments evicts environments, never the baseline.
    pools.acquire(inEnv('a')).busy = false;
    pools.acquire(inEnv('b')).busy = false;
    for (let i = 0; i < 100; i++) pools.acquire(inEnv(`flood-${i}`));
    expect(pools.acquire(ROOT_CONTEXT)).toBe(baseline);
    expect(baseline.destroyed).toBe(false);
    expect(destroyed).not.toContain('');
    // Created after environments took every place: still served.
    const late = makePools({ max: 1 }).pools;
    late.acquire(inEnv('x')).busy = true;
    expect(late.acquire(ROOT_CONTEXT).pool.envId).toBeUndefined();
  });

  it('closes clients unused for idleTimeoutMs, but not busy ones', async () => {
    vi.useFakeTimers();
    const { pools, destroyed } = makePools({ idleTimeoutMs: 40 });
    pools.acquire(inEnv('idle'));
    pools.acquire(inEnv('busy')).busy = true;
    vi.advanceTimersByTime(150);
    vi.useRealTimers();
    expect(destroyed).toEqual(['idle']);
    expect(pools.expired).toBe(1);
    expect(pools.size).toBe(1);
    await pools.close();
  });

  it('uses the envId option, then PICOP_ENV_ID, for work without an Env-Id', () => {
    const { pools } = makePools({ envId: 'worker-env' });
    expect(pools.acquire(ROOT_CONTEXT).pool.envId).toBe('worker-env');
    expect(pools.acquire(inEnv('feature-1')).pool.envId).toBe('feature-1');
    expect(pools.acquire(ROOT_CONTEXT)).toBe(pools.acquire(inEnv('worker-env')));

    process.env.PICOP_ENV_ID = 'from-env-var';
    const fromVar = makePools().pools;
    expect(fromVar.acquire(ROOT_CONTEXT).pool.header.subarray(15).toString()).toBe(
      'Env-Id:from-env-var',
    );

    process.env.PICOP_ENV_ID = 'bad value';
    expect(() => makePools()).toThrow(expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }));
  });

  it('holds at most max clients for 10,000 distinct Env-Ids', () => {
    const { pools, destroyed } = makePools({ max: 32 });
    let most = 0;
    for (let i = 0; i < 10_000; i++) {
      pools.acquire(inEnv(`attacker-${i}`));
      most = Math.max(most, pools.size);
    }
    expect(most).toBe(32);
    expect(pools.created).toBe(10_000);
    expect(pools.evicted).toBe(10_000 - 32);
    expect(destroyed).toHaveLength(10_000 - 32);
  });

  it('keys by the encoded header with another propagator', () => {
    const { pools } = makePools({ propagator: new EnvIdPropagator({ fieldName: 'Tenant' }) });
    const t = pools.acquire(inEnv('t1'));
    expect(t.pool.header.subarray(15).toString()).toBe('Tenant:t1');
    expect(pools.acquire(inEnv('t1'))).toBe(t);
    expect(t.pool.key).toBe(t.pool.header.toString('latin1'));
  });

  it('close() destroys everything, waits for async destroys, then refuses acquire()', async () => {
    let finished = 0;
    const release: Array<() => void> = [];
    const pools = new ContextPools({
      create: () => ({}),
      destroy: async () => {
        await new Promise<void>((resolve) => release.push(resolve));
        finished++;
      },
    });
    pools.acquire(inEnv('a'));
    pools.acquire(inEnv('b'));
    let closed = false;
    const closing = pools.close().then(() => {
      closed = true;
    });
    await new Promise(setImmediate);
    expect([closed, release.length]).toEqual([false, 2]);
    for (const done of release) done();
    await closing;
    expect(finished).toBe(2);
    expect(() => pools.acquire()).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_STATE' }),
    );
  });

  it('reports a destroy that fails without throwing it into the caller', async () => {
    const pools = new ContextPools({
      create: () => ({}),
      destroy: () => {
        throw new Error('cannot close');
      },
      max: 1,
    });
    pools.acquire(inEnv('a'));
    expect(() => pools.acquire(inEnv('b'))).not.toThrow();
    await expect(pools.close()).resolves.toBeUndefined();
  });

  it('rejects bad options with ERR_PICOP_INVALID_ARG', () => {
    expect(() => makePools({ max: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
    expect(() => makePools({ idleTimeoutMs: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
    expect(() => makePools({ envId: 'a\r\nb' })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
  });
});
