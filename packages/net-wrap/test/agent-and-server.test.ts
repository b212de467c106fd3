import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { acceptPicop, createAgent, createHttpsAgent } from '@picop/net-wrap';
import { getEnvId, withEnvId } from '@picop/propagator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../../test/support/http.js';
import { listen, selfSignedCert, useContextManager } from './helpers.js';

useContextManager();

const get = (url: string, agent: http.Agent) => httpGet(url, { agent });

/** Answers with the Env-Id the handler runs in and the port of the client socket (one per connection). */
const whoami: http.RequestListener = (req, res) =>
  res.end(
    JSON.stringify({
      envId: getEnvId() ?? null,
      clientPort: req.socket.remotePort,
      header: req.headers['env-id'] ?? null,
    }),
  );

describe('createAgent() and acceptPicop()', () => {
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    server = acceptPicop(http.createServer(whoami));
    port = await listen(server);
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('runs each handler in the Env-Id of its connection', async () => {
    const agent = createAgent({ origins: '127.0.0.1' });
    const a = JSON.parse(
      await withEnvId('feature-1', () => get(`http://127.0.0.1:${port}/`, agent)),
    );
    const b = JSON.parse(
      await withEnvId('feature-2', () => get(`http://127.0.0.1:${port}/`, agent)),
    );
    const none = JSON.parse(await get(`http://127.0.0.1:${port}/`, agent));
    expect([a.envId, b.envId, none.envId]).toEqual(['feature-1', 'feature-2', null]);
    // The connection's Env-Id is visible as a request header too (for instrumentation-http).
    expect(a.header).toBe('feature-1');
    agent.destroy();
  });

  it('keeps one keep-alive pool per environment: two environments never share a socket', async () => {
    const agent = createAgent({ maxSockets: 1, origins: '127.0.0.1' });
    const seen = await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const env = i % 2 === 0 ? 'feature-1' : 'feature-2';
        return withEnvId(env, async () => ({
          env,
          ...JSON.parse(await get(`http://127.0.0.1:${port}/`, agent)),
        }));
      }),
    );
    const portsByEnv = new Map<string, Set<number>>();
    for (const s of seen) {
      expect(s.envId).toBe(s.env);
      portsByEnv.set(s.env, (portsByEnv.get(s.env) ?? new Set()).add(s.clientPort));
    }
    const p1 = [...(portsByEnv.get('feature-1') ?? [])];
    const p2 = [...(portsByEnv.get('feature-2') ?? [])];
    expect(p1).toHaveLength(1);
    expect(p2).toHaveLength(1);
    expect(p1[0]).not.toBe(p2[0]);
    agent.destroy();
  });

  it('reuses one socket for 100 sequential requests of one environment', async () => {
    const agent = createAgent({ origins: '127.0.0.1' });
    const ports = new Set<number>();
    await withEnvId('feature-1', async () => {
      for (let i = 0; i < 100; i++)
        ports.add(JSON.parse(await get(`http://127.0.0.1:${port}/`, agent)).clientPort);
    });
    expect(ports.size).toBe(1);
    agent.destroy();
  });

  it("carries the handler's Env-Id onward through the agent (a chain of services)", async () => {
    const agent = createAgent({ origins: '127.0.0.1' });
    const front = acceptPicop(
      http.createServer(async (_req, res) =>
        res.end(await get(`http://127.0.0.1:${port}/`, agent)),
      ),
    );
    const frontPort = await listen(front);
    const seen = JSON.parse(
      await withEnvId('feature-2', () => get(`http://127.0.0.1:${frontPort}/`, agent)),
    );
    expect(seen.envId).toBe('feature-2');
    agent.destroy();
    front.closeAllConnections();
    front.close();
  });

  it('closes a connection whose header is bad; optional mode also serves plain HTTP', async () => {
    const plain = new http.Agent({ keepAlive: false });
    await expect(get(`http://127.0.0.1:${port}/`, plain)).rejects.toThrow(
      /socket hang up|ECONNRESET/,
    );
    const lenient = acceptPicop(http.createServer(whoami), { mode: 'optional' });
    const lenientPort = await listen(lenient);
    expect(JSON.parse(await get(`http://127.0.0.1:${lenientPort}/`, plain)).envId).toBeNull();
    const agent = createAgent({ origins: '127.0.0.1' });
    expect(
      JSON.parse(await withEnvId('x', () => get(`http://127.0.0.1:${lenientPort}/`, agent))).envId,
    ).toBe('x');
    agent.destroy();
    lenient.closeAllConnections();
    lenient.close();
  });

  it('names the Env-Id each handler ran in, in an opt-in response header', async () => {
    const named = acceptPicop(
      http.createServer((req, res) => {
        if (req.url === '/own') res.setHeader('picop-env-id', 'set-by-handler');
        res.end('ok');
      }),
      { mode: 'optional', responseHeader: 'PiCoP-Env-Id' },
    );
    const namedPort = await listen(named);
    const headerOf = (path: string, agent: http.Agent) =>
      new Promise<unknown>((resolve, reject) =>
        http
          .get(`http://127.0.0.1:${namedPort}${path}`, { agent }, (res) => {
            res.resume();
            resolve(res.headers['picop-env-id']);
          })
          .on('error', reject),
      );
    const agent = createAgent({ origins: '127.0.0.1' });
    const plain = new http.Agent();
    expect(await withEnvId('feature-1', () => headerOf('/', agent))).toBe('feature-1');
    expect(await headerOf('/', plain)).toBe('');
    expect(await withEnvId('feature-1', () => headerOf('/own', agent))).toBe('set-by-handler');
    expect(() => acceptPicop(http.createServer(), { responseHeader: 'bad header' })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
    agent.destroy();
    plain.destroy();
    named.closeAllConnections();
    named.close();
  });
});

describe('createHttpsAgent() and acceptPicop() on an https.Server', () => {
  const { key, cert } = selfSignedCert();
  let server: https.Server;
  let port: number;
  beforeAll(async () => {
    server = acceptPicop(https.createServer({ key, cert }, whoami));
    port = await listen(server as unknown as net.Server);
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('sends the header before TLS and runs the handler in its Env-Id', async () => {
    const agent = createHttpsAgent({ ca: cert, origins: 'localhost' });
    const a = JSON.parse(
      await withEnvId('feature-1', () => get(`https://localhost:${port}/`, agent)),
    );
    const b = JSON.parse(
      await withEnvId('feature-2', () => get(`https://localhost:${port}/`, agent)),
    );
    const a2 = JSON.parse(
      await withEnvId('feature-1', () => get(`https://localhost:${port}/`, agent)),
    );
    expect([a.envId, b.envId, a2.envId]).toEqual(['feature-1', 'feature-2', 'feature-1']);
    expect(a2.clientPort).toBe(a.clientPort);
    expect(b.clientPort).not.toBe(a.clientPort);
    agent.destroy();
  });
});
