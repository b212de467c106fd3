import type http from 'node:http';
import type net from 'node:net';
import { connect } from '@picop/net-wrap';
import { createAdminServer, createProxy, type PicopProxy } from '@picop/proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoServer, readAll } from './helpers.js';

/** A destination that answers with its own name, so a test sees where a connection went. */
async function namedServer(name: string) {
  const e = await echoServer();
  e.server.removeAllListeners('connection');
  e.server.on('connection', (s: net.Socket) => s.end(name));
  return e;
}

describe('admin API', () => {
  let proxy: PicopProxy;
  let admin: http.Server;
  let base: string;
  let proxyPort: number;
  const servers: Array<{ server: net.Server }> = [];
  let blue: number;
  let green: number;

  beforeAll(async () => {
    const b = await namedServer('blue');
    const g = await namedServer('green');
    servers.push(b, g);
    blue = b.port;
    green = g.port;
    proxy = createProxy({ listen: '127.0.0.1:0', defaultRoute: `127.0.0.1:${blue}` });
    proxyPort = (await proxy.listen()).port;
    admin = createAdminServer(proxy);
    await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(admin.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    admin.close();
    await proxy.close(50);
    for (const s of servers) s.server.close();
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      json: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text,
    };
  };
  const whereDoes = (envId: string) =>
    readAll(connect({ host: '127.0.0.1', port: proxyPort, fields: { 'Env-Id': envId } }));

  it('route changes take effect for new connections', async () => {
    expect(await whereDoes('feature-1')).toBe('blue');
    expect(await call('PUT', '/routes/feature-1', { destination: `127.0.0.1:${green}` })).toEqual({
      status: 200,
      json: { envId: 'feature-1', destination: `127.0.0.1:${green}` },
    });
    expect(await whereDoes('feature-1')).toBe('green');
    expect((await call('GET', '/routes')).json).toEqual({
      default: `127.0.0.1:${blue}`,
      routes: { 'feature-1': `127.0.0.1:${green}` },
    });
    expect((await call('DELETE', '/routes/feature-1')).status).toBe(204);
    expect(await whereDoes('feature-1')).toBe('blue');
    expect((await call('DELETE', '/routes/feature-1')).status).toBe(404);
  });

  it("speaks the Go proxy's /envs shape", async () => {
    const put = await call('PUT', '/envs', [
      { env_id: 'feature-2', destination: `127.0.0.1:${green}` },
      { env_id: 'feature-3', destination: `127.0.0.1:${green}` },
    ]);
    expect(put.status).toBe(200);
    expect(await call('GET', '/envs/feature-2')).toEqual({
      status: 200,
      json: { env_id: 'feature-2', destination: `127.0.0.1:${green}` },
    });
    expect(await whereDoes('feature-3')).toBe('green');
    expect((await call('DELETE', '/envs/feature-3')).status).toBe(204);
    expect((await call('GET', '/envs/feature-3')).status).toBe(404);
  });

  it('answers bad input with 400 and a JSON error, changing nothing', async () => {
    const cases: Array<[string, string, unknown]> = [
      ['PUT', '/routes/x', 'not json'],
      ['PUT', '/routes/x', { destination: 'nohost' }],
      ['PUT', '/routes/x', { destination: '1.2.3.4:99999' }],
      ['PUT', '/routes/x', { nothing: true }],
      ['PUT', '/routes/bad%0Aid', { destination: '127.0.0.1:1' }],
      ['PUT', '/envs', { env_id: 'x' }],
      [
        'PUT',
        '/envs',
        [
          { env_id: 'ok-1', destination: '127.0.0.1:1' },
          { env_id: 'x', destination: 'bad' },
        ],
      ],
    ];
    for (const [method, path, body] of cases) {
      const res = await call(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(res.json.error.code).toMatch(/^ERR_/);
      expect(res.json.error.message.length).toBeGreaterThan(0);
    }
    expect(proxy.routes.get('x')).toBeUndefined();
    expect(proxy.routes.get('ok-1')).toBeUndefined();
    expect((await call('POST', '/routes')).status).toBe(405);
    expect((await call('GET', '/nope')).status).toBe(404);
  });

  it('serves /healthz and Prometheus /metrics', async () => {
    expect((await call('GET', '/healthz')).json.status).toBe('ok');
    const metrics = (await call('GET', '/metrics')).json as string;
    expect(metrics).toContain('# TYPE picop_proxy_connections_accepted_total counter');
    expect(metrics).toMatch(/picop_proxy_connections_accepted_total\{env="feature-1"\} \d+/);
    expect(metrics).toMatch(/picop_proxy_bytes_total\{env="_default",direction="to_client"\} \d+/);
    expect(metrics).toMatch(/picop_proxy_header_read_seconds_count \d+/);
  });

  it("serves the Go reference proxy's admin paths with its request and response shapes", async () => {
    const put = await fetch(`${base}/admin/envs`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ env_id: 'go-1', destination: `127.0.0.1:${green}` }]),
    });
    expect([put.status, await put.text()]).toEqual([200, '']);
    expect(await whereDoes('go-1')).toBe('green');
    expect(await call('GET', '/admin/env/go-1')).toEqual({
      status: 200,
      json: { env_id: 'go-1', destination: `127.0.0.1:${green}` },
    });
    const del = await fetch(`${base}/admin/env/go-1`, { method: 'DELETE' });
    expect([del.status, await del.text()]).toEqual([200, '']);
    expect(await call('GET', '/admin/env/go-1')).toEqual({
      status: 404,
      json: { message: 'Not Found' },
    });
    expect(await whereDoes('go-1')).toBe('blue');
    expect((await fetch(`${base}/admin/env/never`, { method: 'DELETE' })).status).toBe(200);
    for (const bad of [
      'nope',
      { env_id: 'x' },
      [{ env_id: '', destination: 'h:1' }],
      [{ env_id: 'x', destination: 'no-port' }],
    ]) {
      expect(await call('PUT', '/admin/envs', bad)).toEqual({
        status: 400,
        json: { message: 'Bad Request' },
      });
    }
  });
});
