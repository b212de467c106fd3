import { createHash } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { createGateway, type GatewayOptions, type PicopGateway, signEnvId } from '@picop/gateway';
import { acceptPicop, contextOfSocket } from '@picop/net-wrap';
import { getEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useContextManager } from '../../../test/support/otel-and-tls.js';
import { listen } from '../../../test/support/servers.js';

useContextManager();

interface Seen {
  name: string;
  envId: string | null;
  headers: http.IncomingHttpHeaders;
  clientPort: number;
  bytes: number;
  sha: string;
}

/** A service instance: answers who it is, the Env-Id its handler runs in, and what it received. */
function service(name: string, hits: string[]): http.Server {
  const server = acceptPicop(
    http.createServer((req, res) => {
      hits.push(name);
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => {
        if (req.url === '/stream') {
          // A streamed (chunked) response: 64 chunks of 16 KiB.
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          let i = 0;
          const next = () => {
            while (i < 64) {
              i++;
              if (!res.write(Buffer.alloc(16 * 1024, i))) return res.once('drain', next);
            }
            res.end();
          };
          next();
          return;
        }
        const seen: Seen = {
          name,
          envId: getEnvId() ?? null,
          headers: req.headers,
          clientPort: req.socket.remotePort as number,
          bytes,
          sha: hash.digest('hex'),
        };
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.end(JSON.stringify(seen));
      });
    }),
  );
  // Upgrade: answers 101, then writes the connection's Env-Id, then echoes.
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    const ctx = contextOfSocket(req.socket);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n',
    );
    socket.write(`${name} ${ctx === undefined ? 'none' : (getEnvId(ctx) ?? 'none')}\n`);
    socket.pipe(socket);
  });
  return server;
}

const client = new Agent();

async function send(
  port: number,
  options: {
    path?: string;
    method?: 'GET' | 'POST';
    headers?: Record<string, string>;
    body?: Buffer;
  } = {},
) {
  const res = await request(`http://127.0.0.1:${port}${options.path ?? '/'}`, {
    dispatcher: client,
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

const seen = (r: { body: Buffer }) => JSON.parse(r.body.toString()) as Seen;

describe('picop-gateway', () => {
  const hits: string[] = [];
  const servers: http.Server[] = [];
  let proxy: PicopProxy;
  let upstream: string;
  const gateways: PicopGateway[] = [];

  /** A gateway in front of B's proxy, listening; closed after the test. */
  async function gateway(options: Partial<GatewayOptions> = {}): Promise<number> {
    const g = createGateway({ listen: '127.0.0.1:0', upstream, ...options });
    gateways.push(g);
    return (await g.listen()).port;
  }

  beforeAll(async () => {
    const main = service('B[main]', hits);
    const feature1 = service('B[feature-1]', hits);
    servers.push(main, feature1);
    // B's picop-proxy, requiring the header: a request without one would be refused.
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `127.0.0.1:${await listen(main)}`,
      routes: { 'feature-1': `127.0.0.1:${await listen(feature1)}` },
      propagate: true,
    });
    upstream = `127.0.0.1:${(await proxy.listen()).port}`;
  });
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.close(100)));
  });
  afterAll(async () => {
    await proxy.close(100);
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
    await client.close();
  });

  it('routes each request by its Env-Id header; none: the baseline', async () => {
    const port = await gateway();
    const f1 = seen(await send(port, { headers: { 'Env-Id': 'feature-1' } }));
    const none = seen(await send(port));
    const f2 = seen(await send(port, { headers: { 'Env-Id': 'feature-2' } }));
    expect(f1).toMatchObject({ name: 'B[feature-1]', envId: 'feature-1' });
    expect(f1.headers['env-id']).toBe('feature-1');
    expect(none).toMatchObject({ name: 'B[main]', envId: null });
    expect(none.headers['env-id']).toBeUndefined();
    expect(f2).toMatchObject({ name: 'B[main]', envId: 'feature-2' });
  });

  it('names the Env-Id each request was forwarded in, in an opt-in response header', async () => {
    const port = await gateway({ responseHeader: 'PiCoP-Env-Id' });
    const f1 = await send(port, { headers: { 'Env-Id': 'feature-1' } });
    expect(seen(f1).name).toBe('B[feature-1]');
    expect(f1.headers['picop-env-id']).toBe('feature-1');
    expect((await send(port)).headers['picop-env-id']).toBe('');
    expect((await send(await gateway())).headers['picop-env-id']).toBeUndefined();
    expect(() =>
      createGateway({ listen: '127.0.0.1:0', upstream, responseHeader: 'no spaces' }),
    ).toThrow(expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }));
  });

  it("serves a request without Env-Id from the baseline even when PICOP_ENV_ID is set (the gateway's own process)", async () => {
    process.env.PICOP_ENV_ID = 'feature-1';
    try {
      const port = await gateway();
      expect(seen(await send(port))).toMatchObject({ name: 'B[main]', envId: null });
    } finally {
      delete process.env.PICOP_ENV_ID;
    }
  });

  it('reads the Env-Id from baggage, a cookie or the host name when configured', async () => {
    const port = await gateway({ cookie: 'env', hostPattern: '*.preview.example.com' });
    const fromBaggage = seen(
      await send(port, { headers: { baggage: 'user=7, env-id=feature-1;p=1' } }),
    );
    expect(fromBaggage).toMatchObject({ name: 'B[feature-1]', envId: 'feature-1' });
    // The other baggage entries reach the service.
    expect(fromBaggage.headers.baggage).toBe('user=7');
    const fromCookie = seen(await send(port, { headers: { cookie: 'x=1; env=feature-1' } }));
    expect(fromCookie).toMatchObject({ name: 'B[feature-1]' });
    const fromHost = seen(
      await send(port, { headers: { host: 'feature-1.preview.example.com:8080' } }),
    );
    expect(fromHost).toMatchObject({ name: 'B[feature-1]' });
    expect(fromHost.headers.host).toBe('feature-1.preview.example.com:8080');
    const otherHost = seen(await send(port, { headers: { host: 'www.example.com' } }));
    expect(otherHost).toMatchObject({ name: 'B[main]', envId: null });
  });

  it('answers 400 with a JSON error for an invalid Env-Id, and forwards nothing', async () => {
    const port = await gateway();
    const before = hits.length;
    for (const bad of ['bad id', 'x'.repeat(5000), 'caf\u00e9']) {
      const res = await send(port, {
        headers: { 'Env-Id': encodeURI(bad) === bad ? bad : bad },
      }).catch(() => undefined);
      if (res === undefined) continue; // a value undici itself refuses to send
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body.toString()).error.code).toBe('ERR_PICOP_INVALID_ENV_ID');
    }
    const fromBaggage = await send(port, { headers: { baggage: 'env-id=a%20b' } });
    expect(fromBaggage.status).toBe(400);
    expect(hits.length).toBe(before);
  });

  it('serves an Env-Id outside the allow-list from the baseline, without it, and counts it', async () => {
    const port = await gateway({ allow: ['feature-*'] });
    const allowed = seen(await send(port, { headers: { 'Env-Id': 'feature-1' } }));
    const refused = seen(
      await send(port, { headers: { 'Env-Id': 'hotfix', baggage: 'env-id=hotfix' } }),
    );
    expect(allowed.name).toBe('B[feature-1]');
    expect(refused).toMatchObject({ name: 'B[main]', envId: null });
    expect(refused.headers['env-id']).toBeUndefined();
    expect(refused.headers.baggage).toBeUndefined();
    const metrics = await (gateways.at(-1) as PicopGateway).metrics.registry.metrics();
    expect(metrics).toContain('picop_gateway_env_id_refused_total{reason="not_allowed"} 1');
  });

  it('with a token, leaves the baseline only for requests that show it (and never forwards it)', async () => {
    const port = await gateway({ token: 's3cret' });
    const without = seen(await send(port, { headers: { 'Env-Id': 'feature-1' } }));
    const wrong = seen(
      await send(port, { headers: { 'Env-Id': 'feature-1', 'picop-token': 's3creT' } }),
    );
    const right = seen(
      await send(port, { headers: { 'Env-Id': 'feature-1', 'picop-token': 's3cret' } }),
    );
    expect(without).toMatchObject({ name: 'B[main]', envId: null });
    expect(wrong).toMatchObject({ name: 'B[main]', envId: null });
    expect(right).toMatchObject({ name: 'B[feature-1]', envId: 'feature-1' });
    expect(right.headers['picop-token']).toBeUndefined();
    const metrics = await (gateways.at(-1) as PicopGateway).metrics.registry.metrics();
    expect(metrics).toContain('picop_gateway_env_id_refused_total{reason="unproven"} 2');
  });

  it('with a cookie key, a signed cookie proves its own Env-Id; a tampered one does not', async () => {
    const key = 'k'.repeat(32);
    const port = await gateway({ cookie: 'picop-env', cookieKey: key });
    const signed = signEnvId('feature-1', key);
    const ok = seen(await send(port, { headers: { cookie: `picop-env=${signed}` } }));
    const tampered = seen(
      await send(port, {
        headers: { cookie: `picop-env=${signed.replace('feature-1', 'feature-2')}` },
      }),
    );
    const unsigned = seen(await send(port, { headers: { cookie: 'picop-env=feature-1' } }));
    // A header naming another environment than the cookie: the request names two, answered 400.
    const mismatch = await send(port, {
      headers: { cookie: `picop-env=${signed}`, 'Env-Id': 'feature-2' },
    });
    expect(ok).toMatchObject({ name: 'B[feature-1]', envId: 'feature-1' });
    expect(tampered).toMatchObject({ name: 'B[main]', envId: null });
    expect(unsigned).toMatchObject({ name: 'B[main]', envId: null });
    expect(mismatch.status).toBe(400);
    expect(JSON.parse(mismatch.body.toString()).error.code).toBe('ERR_PICOP_AMBIGUOUS_ENV_ID');
  });

  it('streams request and response bodies, and passes set-cookie and X-Forwarded-*', async () => {
    const port = await gateway();
    const body = Buffer.alloc(5 * 1024 * 1024, 7);
    const upload = await send(port, {
      method: 'POST',
      headers: { 'Env-Id': 'feature-1', 'content-type': 'application/octet-stream' },
      body,
    });
    const answer = seen(upload);
    expect(answer.bytes).toBe(body.length);
    expect(answer.sha).toBe(createHash('sha256').update(body).digest('hex'));
    expect(upload.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(answer.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(answer.headers['x-forwarded-proto']).toBe('http');
    expect(answer.headers['x-forwarded-host']).toBe(`127.0.0.1:${port}`);
    const download = await send(port, { path: '/stream' });
    expect(download.body.length).toBe(64 * 16 * 1024);
    expect(download.body.at(-1)).toBe(64);
  });

  it('keeps one keep-alive pool per environment: reuse within, never across', async () => {
    const port = await gateway();
    const ports = new Map<string, Set<number>>();
    for (let i = 0; i < 30; i++) {
      const env = ['feature-1', 'feature-2', ''][i % 3] as string;
      const s = seen(await send(port, { headers: env ? { 'Env-Id': env } : {} }));
      expect(s.envId).toBe(env || null);
      ports.set(env, (ports.get(env) ?? new Set()).add(s.clientPort));
    }
    const all = [...ports.values()].map((p) => [...p]);
    expect(all.map((p) => p.length)).toEqual([1, 1, 1]);
    expect(new Set(all.flat()).size).toBe(3);
  });

  it('passes an Upgrade through, on a connection of the environment', async () => {
    const port = await gateway();
    const { socket, head } = await new Promise<{ socket: net.Socket; head: Buffer }>(
      (resolve, reject) => {
        http
          .request({
            host: '127.0.0.1',
            port,
            headers: { connection: 'upgrade', upgrade: 'echo', 'env-id': 'feature-1' },
          })
          .on('upgrade', (res, s, h) => {
            expect(res.statusCode).toBe(101);
            resolve({ socket: s, head: h });
          })
          .on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)))
          .on('error', reject)
          .end();
      },
    );
    let received = head.toString();
    const twoLines = new Promise<void>((resolve) => {
      const check = () => received.split('\n').length > 2 && resolve();
      socket.on('data', (d) => {
        received += d;
        check();
      });
      check();
    });
    socket.write('ping\n');
    await twoLines;
    expect(received.split('\n').slice(0, 2)).toEqual(['B[feature-1] feature-1', 'ping']);
    socket.destroy();
  });

  it('answers 502 with a JSON error when the upstream is down', async () => {
    const closed = http.createServer();
    const deadPort = await listen(closed);
    closed.close();
    const port = await gateway({ upstream: `127.0.0.1:${deadPort}` });
    const res = await send(port, { headers: { 'Env-Id': 'feature-1' } });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body.toString()).error.code).toBe('ERR_PICOP_UPSTREAM');
  });

  it('answers 504 when the upstream is too slow, and 503 when every pool is busy', async () => {
    // An upstream (reading the header) that holds its requests until the test ends.
    const held: http.ServerResponse[] = [];
    let arrived = () => {};
    const slow = acceptPicop(
      http.createServer((_req, res) => {
        held.push(res);
        arrived();
      }),
    );
    servers.push(slow);
    const slowPort = await listen(slow);
    const port = await gateway({ upstream: `127.0.0.1:${slowPort}`, timeoutMs: 200, maxPools: 1 });
    const timedOut = await send(port, { headers: { 'Env-Id': 'feature-1' } });
    expect(timedOut.status).toBe(504);
    expect(JSON.parse(timedOut.body.toString()).error.code).toBe('ERR_PICOP_UPSTREAM_TIMEOUT');
    // feature-1's pool is busy with a request; feature-2 would need a second pool.
    const inFlight = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const busy = send(port, { headers: { 'Env-Id': 'feature-1' } });
    await inFlight;
    const refused = await send(port, { headers: { 'Env-Id': 'feature-2' } });
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body.toString()).error.code).toBe('ERR_PICOP_TOO_MANY_CONTEXTS');
    for (const res of held) res.end('done');
    expect((await busy).status).toBe(200);
  });

  it('drains: a request in flight finishes, new connections are refused', async () => {
    // An upstream that answers when the test says so.
    let answer = () => {};
    let arrived = () => {};
    const requestArrived = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const slow = acceptPicop(
      http.createServer((_req, res) => {
        answer = () => res.end('late');
        arrived();
      }),
    );
    servers.push(slow);
    const slowPort = await listen(slow);
    const g = createGateway({ listen: '127.0.0.1:0', routes: { slow: `127.0.0.1:${slowPort}` } });
    const { port } = await g.listen();
    const inFlight = send(port, { headers: { 'Env-Id': 'slow' } });
    await requestArrived;
    const closing = g.close(10_000);
    const fresh = new Agent();
    await expect(request(`http://127.0.0.1:${port}/`, { dispatcher: fresh })).rejects.toThrow(
      /ECONNREFUSED/,
    );
    await fresh.close();
    answer();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('late');
    await closing;
  });

  it('needs an upstream or routes, and checks its patterns', () => {
    expect(() => createGateway({ listen: '127.0.0.1:0' })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
    expect(() =>
      createGateway({ listen: '127.0.0.1:0', upstream, hostPattern: 'example.com' }),
    ).toThrow(expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }));
  });
});
