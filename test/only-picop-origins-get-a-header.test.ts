// A process that installs the PiCoP dispatcher or agent globally, as the root README shows, still
// talks to the rest of the world (payment APIs, object stores, webhooks) with exactly the bytes it
// would send without PiCoP: the header goes only to the origins said to speak it.
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createDispatcher } from '@picop/fetch';
import { acceptPicop, createAgent, createHttpsAgent } from '@picop/net-wrap';
import { getEnvId, withEnvId } from '@picop/propagator';
import { createAdminServer, createProxy, type PicopProxy } from '@picop/proxy';
import { Routes } from '@picop/routes';
import { type Dispatcher, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from './support/http.js';
import { selfSignedCert, useContextManager } from './support/otel-and-tls.js';

useContextManager();

const listen = async (server: net.Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
};

const { key, cert } = selfSignedCert();

/** Whether `bytes` begin with a TLS record holding a ClientHello (RFC 8446, 5.1 and 4). */
const isClientHello = (bytes: Buffer) =>
  bytes[0] === 0x16 && bytes[1] === 0x03 && bytes[5] === 0x01;

describe('only PiCoP origins get a header', () => {
  /** The first bytes of each connection the world's HTTPS server accepted. */
  const worldFirstBytes: Buffer[] = [];
  let world: string;
  let picopOrigin: string;
  let proxy: PicopProxy;
  let admin: http.Server;
  let adminUrl: string;
  const servers: net.Server[] = [];
  const previousDispatcher = getGlobalDispatcher();
  const previousAgents = { http: http.globalAgent, https: https.globalAgent };

  beforeAll(async () => {
    // The world: an HTTPS server that knows nothing of PiCoP, behind a TCP relay that records.
    const tlsServer = https.createServer({ key, cert }, (_req, res) => res.end('world'));
    const tlsPort = await listen(tlsServer);
    const recorder = net.createServer((socket) => {
      socket.once('data', (chunk: Buffer) => worldFirstBytes.push(chunk));
      const upstream = net.connect(tlsPort, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    world = `https://localhost:${await listen(recorder)}/`;
    // A PiCoP service: picop-proxy in front of B[main] and B[feature-1].
    const b = (name: string) =>
      acceptPicop(http.createServer((_req, res) => res.end(`${name} in ${getEnvId() ?? 'none'}`)));
    const main = b('B[main]');
    const feature1 = b('B[feature-1]');
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `127.0.0.1:${await listen(main)}`,
      routes: { 'feature-1': `127.0.0.1:${await listen(feature1)}` },
      propagate: true,
    });
    picopOrigin = `127.0.0.1:${(await proxy.listen()).port}`;
    admin = createAdminServer(proxy);
    adminUrl = `http://127.0.0.1:${await listen(admin)}`;
    servers.push(tlsServer, recorder, main, feature1, admin);
  });
  afterEach(() => {
    setGlobalDispatcher(previousDispatcher);
    http.globalAgent = previousAgents.http;
    https.globalAgent = previousAgents.https;
  });
  afterAll(async () => {
    await proxy.close(100);
    for (const server of servers) {
      (server as http.Server).closeAllConnections?.();
      server.close();
    }
  });

  /** Node's global fetch, as a service calls it: the text of the answer. */
  const get = async (url: string) => (await fetch(url)).text();

  it('the global dispatcher: HTTPS to the world starts with the ClientHello, in any environment', async () => {
    // The root README's set-up (the world's self-signed certificate trusted for this test).
    setGlobalDispatcher(
      createDispatcher({ connect: { ca: cert }, picop: { origins: [picopOrigin] } }),
    );
    const before = worldFirstBytes.length;
    expect(await get(world)).toBe('world');
    expect(await withEnvId('feature-1', () => get(world))).toBe('world');
    const opened = worldFirstBytes.slice(before);
    expect(opened.length).toBeGreaterThan(0);
    for (const bytes of opened) expect(isClientHello(bytes)).toBe(true);
    // The configured PiCoP origin still gets the environment's header, read by picop-proxy.
    expect(await withEnvId('feature-1', () => get(`http://${picopOrigin}/`))).toBe(
      'B[feature-1] in feature-1',
    );
    expect(await get(`http://${picopOrigin}/`)).toBe('B[main] in none');
    await (getGlobalDispatcher() as Dispatcher).close();
  });

  it("net-wrap's agents as Node's global agents: the same", async () => {
    http.globalAgent = createAgent({ origins: [picopOrigin] });
    https.globalAgent = createHttpsAgent({ ca: cert, origins: [picopOrigin] });
    const before = worldFirstBytes.length;
    expect(await httpGet(world)).toBe('world');
    expect(await withEnvId('feature-1', () => httpGet(world))).toBe('world');
    const opened = worldFirstBytes.slice(before);
    expect(opened.length).toBeGreaterThan(0);
    for (const bytes of opened) expect(isClientHello(bytes)).toBe(true);
    expect(await withEnvId('feature-1', () => httpGet(`http://${picopOrigin}/`))).toBe(
      'B[feature-1] in feature-1',
    );
    expect(await httpGet(`http://${picopOrigin}/`)).toBe('B[main] in none');
    http.globalAgent.destroy();
    https.globalAgent.destroy();
  });

  it("Routes({ url }) reads a proxy's admin API whatever the process installed globally", async () => {
    // The worst case: every origin said to speak PiCoP, the admin's included.
    setGlobalDispatcher(createDispatcher({ picop: { origins: '*' } }));
    http.globalAgent = createAgent({ origins: '*' });
    const routes = new Routes({ url: adminUrl, pollIntervalMs: 50 });
    try {
      await Promise.race([
        once(routes, 'change'),
        once(routes, 'error').then(([err]) => Promise.reject(err)),
      ]);
      expect(routes.get('feature-1')).toMatchObject({ host: '127.0.0.1' });
      expect(routes.failures).toBe(0);
    } finally {
      routes.close();
      await (getGlobalDispatcher() as Dispatcher).close();
      http.globalAgent.destroy();
    }
  });

  it('a dispatcher or agent that is not told its PiCoP origins is refused, naming the option', () => {
    const saved = process.env.PICOP_ORIGINS;
    delete process.env.PICOP_ORIGINS;
    try {
      expect(() => createDispatcher()).toThrow(
        expect.objectContaining({
          code: 'ERR_PICOP_INVALID_ARG',
          message: expect.stringContaining('`picop.origins`'),
        }),
      );
      expect(() => createAgent()).toThrow(
        expect.objectContaining({
          code: 'ERR_PICOP_INVALID_ARG',
          message: expect.stringContaining('`origins`'),
        }),
      );
      expect(() => createDispatcher({ picop: { origins: 'http://bad/path' } })).toThrow(
        expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
      );
      // PICOP_ORIGINS, as a deployment sets it; picop: false needs none.
      process.env.PICOP_ORIGINS = '*.svc.cluster.local, orders:8080';
      void createDispatcher().close();
      createAgent().destroy();
      void createDispatcher({ picop: false }).close();
    } finally {
      if (saved === undefined) delete process.env.PICOP_ORIGINS;
      else process.env.PICOP_ORIGINS = saved;
    }
  });
});
