import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { createDispatcher, PicopDispatcher } from '@picop/fetch';
import { acceptPicop } from '@picop/net-wrap';
import { getEnvId, withEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import {
  type Dispatcher,
  getGlobalDispatcher,
  setGlobalDispatcher,
  fetch as undiciFetch,
  request as undiciRequest,
} from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCert, useContextManager } from '../../../test/support/otel-and-tls.js';
import { listen } from '../../../test/support/servers.js';

useContextManager();

/** Every test server listens on loopback: PiCoP origins here. */
const picop = { origins: '127.0.0.1' };

interface Answer {
  name: string;
  envId: string | null;
  clientPort: number;
  header: string | null;
}

/** A service instance that says who it is, the Env-Id its handler runs in and its client's port. */
function service(name: string, options: { mode?: 'optional' } = {}): http.Server {
  return acceptPicop(
    http.createServer((req, res) => {
      req.resume();
      res.end(
        JSON.stringify({
          name,
          envId: getEnvId() ?? null,
          clientPort: req.socket.remotePort,
          header: req.headers['env-id'] ?? null,
        }),
      );
    }),
    options,
  );
}

/** Node's global fetch with a dispatcher (its types name undici-types' Dispatcher, the same API). */
const globalFetch = (url: string, dispatcher: Dispatcher) =>
  fetch(url, { dispatcher } as unknown as RequestInit);

const json = async (res: { json(): Promise<unknown> }) => (await res.json()) as Answer;

const close = (server: http.Server) => {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(resolve));
};

describe('fetch through picop-proxy with the PiCoP dispatcher', () => {
  const servers: http.Server[] = [];
  let proxy: PicopProxy;
  let b: string;
  beforeAll(async () => {
    const main = service('B[main]');
    const feature1 = service('B[feature-1]');
    servers.push(main, feature1);
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `127.0.0.1:${await listen(main)}`,
      routes: { 'feature-1': `127.0.0.1:${await listen(feature1)}` },
      propagate: true,
    });
    b = `http://127.0.0.1:${(await proxy.listen()).port}`;
  });
  afterAll(async () => {
    await proxy.close(100);
    await Promise.all(servers.map(close));
  });

  it("routes Node's global fetch by the caller's Env-Id", async () => {
    const dispatcher = createDispatcher({ picop });
    const f1 = await withEnvId('feature-1', () => globalFetch(b, dispatcher));
    const none = await globalFetch(b, dispatcher);
    const f2 = await withEnvId('feature-2', () => globalFetch(b, dispatcher));
    expect(await json(f1)).toMatchObject({ name: 'B[feature-1]', envId: 'feature-1' });
    expect(await json(none)).toMatchObject({ name: 'B[main]', envId: null });
    // No B[feature-2]: the baseline serves it, in feature-2.
    expect(await json(f2)).toMatchObject({ name: 'B[main]', envId: 'feature-2' });
    await dispatcher.close();
  });

  it("routes undici's fetch and request", async () => {
    const dispatcher = createDispatcher({ picop });
    const viaFetch = await withEnvId('feature-1', () => undiciFetch(b, { dispatcher }));
    const viaRequest = await withEnvId('feature-1', () => undiciRequest(b, { dispatcher }));
    expect(await json(viaFetch)).toMatchObject({ name: 'B[feature-1]' });
    expect(await json(viaRequest.body)).toMatchObject({ name: 'B[feature-1]' });
    await dispatcher.close();
  });

  it('as the global dispatcher, makes every fetch of a service PiCoP-aware', async () => {
    // A: a service in whatever environment its callers are in, calling B with plain fetch().
    const a = acceptPicop(
      http.createServer(async (_req, res) => {
        const fromB = (await (await fetch(b)).json()) as Answer;
        res.end(JSON.stringify({ A: getEnvId() ?? null, B: fromB.name }));
      }),
    );
    const aUrl = `http://127.0.0.1:${await listen(a)}`;
    const previous = getGlobalDispatcher();
    const dispatcher = createDispatcher({ picop });
    setGlobalDispatcher(dispatcher);
    try {
      const caller = createDispatcher({ picop });
      const asFeature1 = await withEnvId('feature-1', () =>
        undiciFetch(aUrl, { dispatcher: caller }),
      );
      const asMain = await undiciFetch(aUrl, { dispatcher: caller });
      expect(await asFeature1.json()).toEqual({ A: 'feature-1', B: 'B[feature-1]' });
      expect(await asMain.json()).toEqual({ A: null, B: 'B[main]' });
      await caller.close();
    } finally {
      setGlobalDispatcher(previous);
      await dispatcher.close();
      await close(a);
    }
  });

  it('reuses keep-alive connections within an environment, never across', async () => {
    const dispatcher = createDispatcher({ connections: 1, picop });
    let connects = 0;
    dispatcher.on('connect', () => connects++);
    const seen = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const env = ['feature-1', 'feature-2', undefined][i % 3];
        const call = async () => ({ env, ...(await json(await undiciFetch(b, { dispatcher }))) });
        return env === undefined ? call() : withEnvId(env, call);
      }),
    );
    const portsByEnv = new Map<string | undefined, Set<number>>();
    for (const s of seen) {
      expect(s.envId).toBe(s.env ?? null);
      portsByEnv.set(s.env, (portsByEnv.get(s.env) ?? new Set()).add(s.clientPort));
    }
    const ports = [...portsByEnv.values()].map((p) => [...p]);
    // One connection per environment, used by all 20 of its requests; three distinct ones.
    expect(ports.map((p) => p.length)).toEqual([1, 1, 1]);
    expect(new Set(ports.flat()).size).toBe(3);
    // The pools' undici events are the dispatcher's.
    expect(connects).toBe(3);
    await dispatcher.close();
  });
});

describe('the PiCoP dispatcher', () => {
  it('keeps 10,000 distinct Env-Ids within maxPools, each request in its own environment', async () => {
    const server = service('B', { mode: 'optional' });
    const url = `http://127.0.0.1:${await listen(server)}`;
    let open = 0;
    let peak = 0;
    server.on('connection', (socket: net.Socket) => {
      peak = Math.max(peak, ++open);
      socket.on('close', () => open--);
    });
    const dispatcher = new PicopDispatcher({ picop: { ...picop, maxPools: 8 } });
    let largest = 0;
    for (let i = 0; i < 10_000; i++) {
      const env = `env-${i}`;
      const answer = await withEnvId(env, async () => json(await undiciFetch(url, { dispatcher })));
      if (answer.envId !== env) throw new Error(`request of ${env} ran in ${answer.envId}`);
      largest = Math.max(largest, dispatcher.size);
    }
    expect(largest).toBe(8);
    // An evicted pool's connection closes as the next one opens: at most one more than the cap.
    expect(peak).toBeLessThanOrEqual(9);
    await dispatcher.close();
    await close(server);
  }, 120_000);

  it('sends the header in clear, then TLS (https:)', async () => {
    const { key, cert } = selfSignedCert();
    const server = acceptPicop(
      https.createServer({ key, cert }, (_req, res) => res.end(getEnvId() ?? 'none')),
    );
    const url = `https://127.0.0.1:${await listen(server)}`;
    const dispatcher = createDispatcher({ connect: { ca: cert }, picop });
    const body = await withEnvId('feature-1', async () =>
      (await undiciFetch(url, { dispatcher })).text(),
    );
    expect(body).toBe('feature-1');
    await dispatcher.close();
    await close(server);
  });

  // In the guarded project, PicopGuard rightly flags this plain Agent's request in feature-1.
  it.skipIf(process.env.PICOP_GUARDED)(
    'with picop: false is a plain undici Agent: no header',
    async () => {
      const server = service('B', { mode: 'optional' });
      const url = `http://127.0.0.1:${await listen(server)}`;
      const dispatcher = createDispatcher({ picop: false });
      expect(dispatcher).not.toBeInstanceOf(PicopDispatcher);
      const answer = await withEnvId('feature-1', async () =>
        json(await undiciFetch(url, { dispatcher })),
      );
      expect(answer.envId).toBeNull();
      await dispatcher.close();
      await close(server);
    },
  );

  it('fails a request after close() with ERR_PICOP_INVALID_STATE', async () => {
    const dispatcher = createDispatcher({ picop });
    await dispatcher.close();
    const error = await globalFetch('http://127.0.0.1:8079/', dispatcher).catch(
      (err: Error & { cause?: { code?: string } }) => err,
    );
    expect((error as Error & { cause?: { code?: string } }).cause?.code).toBe(
      'ERR_PICOP_INVALID_STATE',
    );
  });

  it('rejects an invalid fallback Env-Id when created', () => {
    expect(() => createDispatcher({ picop: { ...picop, envId: 'bad id' } })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
  });

  it("reports a refused connection as undici's connect error", async () => {
    const server = service('B');
    const port = await listen(server);
    await close(server);
    const dispatcher = createDispatcher({ picop });
    const error = await withEnvId('feature-1', () =>
      undiciFetch(`http://127.0.0.1:${port}/`, { dispatcher }).catch(
        (err: Error & { cause?: { code?: string } }) => err,
      ),
    );
    expect((error as Error & { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
    await dispatcher.close();
  });
});
