// Proxyless HTTP: requests to a routed origin go straight to the environment's instance of the
// service, with no proxy (and no header, which a plain HTTP server would refuse).
import { type EventEmitter, once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDispatcher, type PicopDispatcher } from '@picop/fetch';
import { acceptPicop } from '@picop/net-wrap';
import { getEnvId, withEnvId } from '@picop/propagator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useContextManager } from '../../../test/support/otel-and-tls.js';

useContextManager();

/** An HTTP server answering its own name (with `picop`: reading the header, and the Env-Id). */
async function service(name: string, picop = false) {
  const handler: http.RequestListener = (_req, res) =>
    res.end(picop ? `${name} in ${getEnvId() ?? 'none'}` : name);
  const server = picop ? acceptPicop(http.createServer(handler)) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, address: `127.0.0.1:${(server.address() as net.AddressInfo).port}` };
}

describe('@picop/fetch proxyless routes', () => {
  const services: http.Server[] = [];
  let main = '';
  let feature1 = '';
  let feature2 = '';
  let aware = '';
  beforeAll(async () => {
    const started = await Promise.all([
      service('B[main]'),
      service('B[feature-1]'),
      service('B[feature-2]'),
      service('B[aware]', true),
    ]);
    for (const s of started) services.push(s.server);
    [main = '', feature1 = '', feature2 = '', aware = ''] = started.map((s) => s.address);
  });
  afterAll(async () => {
    for (const s of services) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  const get = async (dispatcher: PicopDispatcher, url: string, envId?: string) => {
    const call = () => fetch(url, { dispatcher } as unknown as RequestInit).then((r) => r.text());
    return envId === undefined ? call() : withEnvId(envId, call);
  };

  it('a routed origin: each environment to its route, the others to the URL’s host', async () => {
    const dispatcher = createDispatcher({
      picop: {
        routes: {
          [`http://${main}`]: {
            table: { 'feature-1': feature1, 'feature-3': { destination: aware, header: true } },
          },
        },
        origins: [aware],
      },
    }) as PicopDispatcher;
    try {
      expect(await get(dispatcher, `http://${main}/`, 'feature-1')).toBe('B[feature-1]');
      expect(await get(dispatcher, `http://${main}/`)).toBe('B[main]');
      expect(await get(dispatcher, `http://${main}/`, 'feature-9')).toBe('B[main]');
      // A route that wants the header: a PiCoP-aware instance reads the Env-Id from it.
      expect(await get(dispatcher, `http://${main}/`, 'feature-3')).toBe('B[aware] in feature-3');
      // Another origin, not routed but in `origins`: it gets the header (a PiCoP-aware server).
      expect(await get(dispatcher, `http://${aware}/`, 'feature-1')).toBe('B[aware] in feature-1');
      // One in neither: plain bytes, as without PiCoP.
      expect(await get(dispatcher, `http://${feature2}/`, 'feature-1')).toBe('B[feature-2]');
    } finally {
      await dispatcher.close();
    }
  });

  it('a routes file: a change sends the next requests to the new destination', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'picop-fetch-routes-'));
    const file = join(dir, 'routes.json');
    writeFileSync(file, JSON.stringify({ 'feature-1': feature1 }));
    const dispatcher = createDispatcher({
      picop: { routes: { [`http://${main}`]: { file } } },
    }) as PicopDispatcher;
    try {
      expect(await get(dispatcher, `http://${main}/`, 'feature-1')).toBe('B[feature-1]');
      const changed = once(dispatcher.routesOf(`http://${main}`) as EventEmitter, 'change');
      await writeFile(`${file}.new`, JSON.stringify({ 'feature-1': feature2 }));
      await rename(`${file}.new`, file);
      await changed;
      expect(await get(dispatcher, `http://${main}/`, 'feature-1')).toBe('B[feature-2]');
      expect(await get(dispatcher, `http://${main}/`)).toBe('B[main]');
    } finally {
      await dispatcher.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('isolate is refused with ERR_PICOP_UNSUPPORTED', () => {
    // As plain JavaScript would pass it: the type has no `isolate`.
    const picop = JSON.parse('{ "isolate": {} }');
    expect(() => createDispatcher({ picop })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_UNSUPPORTED' }),
    );
  });

  it('an unreachable routes URL fails the environment’s request, not the baseline’s', async () => {
    const dispatcher = createDispatcher({
      picop: {
        routes: { [`http://${main}`]: { url: 'http://127.0.0.1:1', pollIntervalMs: 60_000 } },
      },
    }) as PicopDispatcher;
    try {
      await expect(get(dispatcher, `http://${main}/`, 'feature-1')).rejects.toThrow();
      expect(await get(dispatcher, `http://${main}/`)).toBe('B[main]');
    } finally {
      await dispatcher.close();
    }
  });
});
