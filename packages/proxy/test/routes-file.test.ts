import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@picop/net-wrap';
import { createProxy } from '@picop/proxy';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ON_HAPROXY, startProxy, type TestProxy } from './engine.js';
import { readAll } from './helpers.js';

/** A server that answers every connection with its name, then closes it. */
async function named(name: string): Promise<{ server: net.Server; address: string }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, address: `127.0.0.1:${(server.address() as net.AddressInfo).port}` };
}

describe('routes file', () => {
  const servers: Record<string, { server: net.Server; address: string }> = {};
  const proxies: TestProxy[] = [];
  beforeAll(async () => {
    for (const name of ['A', 'B', 'C']) servers[name] = await named(name);
  });
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close(50)));
  });
  afterAll(() => {
    for (const { server } of Object.values(servers)) server.close();
  });
  const routesTo = (name: string) => JSON.stringify({ x: servers[name]?.address });
  const start = async (routesFile: string) => {
    const proxy = await startProxy({
      listen: '127.0.0.1:0',
      defaultRoute: servers.C?.address,
      routesFile,
    });
    proxies.push(proxy);
    return { proxy, port: proxy.port };
  };

  // HAProxy re-reads the file once a second: fewer rewrites there.
  const rewrites = ON_HAPROXY ? 8 : 100;

  it(`rewritten ${rewrites} times while 32 clients connect: each connection routed by the old or the new table`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'picop-routes-'));
    const file = join(dir, 'routes.json');
    writeFileSync(file, routesTo('A'));
    const { proxy, port } = await start(file);
    let writing = true;
    const answers: string[] = [];
    const clients = Array.from({ length: 32 }, async () => {
      while (writing) {
        const socket = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'x' } });
        answers.push(await readAll(socket));
      }
    });
    for (let i = 1; i <= rewrites; i++) {
      // A plain rewrite, not atomic: a read in the middle of it is refused, never applied.
      await proxy.reread(() => writeFileSync(file, routesTo(i % 2 === 1 ? 'B' : 'A')), 'reload');
    }
    writing = false;
    await Promise.all(clients);
    expect(answers.length).toBeGreaterThan(rewrites);
    const seen = new Set(answers);
    expect([...seen].sort()).toEqual(['A', 'B']);
    expect(await proxy.metrics()).toContain(`picop_proxy_routes_reloads_total ${rewrites}\n`);
    expect((await proxy.stats()).byEnv.x?.failed).toEqual({});
  });

  it("follows Kubernetes' swap of a mounted ConfigMap's ..data symlink", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'picop-configmap-'));
    const version = (name: string, target: string) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'routes.json'), routesTo(target));
    };
    version('..2026_11_25_a', 'A');
    symlinkSync('..2026_11_25_a', join(dir, '..data'));
    symlinkSync('..data/routes.json', join(dir, 'routes.json'));
    const { proxy, port } = await start(join(dir, 'routes.json'));
    expect(await readAll(connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'x' } }))).toBe(
      'A',
    );
    // What the kubelet does: a new folder, a new symlink, renamed over ..data.
    await proxy.reread(() => {
      version('..2026_11_25_b', 'B');
      symlinkSync('..2026_11_25_b', join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    }, 'reload');
    expect(await readAll(connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'x' } }))).toBe(
      'B',
    );
  });

  it('keeps the last good routes when the file goes bad, and counts it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'picop-routes-'));
    const file = join(dir, 'routes.json');
    writeFileSync(file, JSON.stringify([{ env_id: 'x', destination: servers.A?.address }]));
    const { proxy, port } = await start(file);
    for (const bad of ['{"x": ', '{"x": "nowhere"}', '{"bad id": "127.0.0.1:1"}']) {
      await proxy.reread(() => writeFileSync(file, bad), 'error');
    }
    if (proxy.node) expect(proxy.node.routes.toJSON()).toEqual({ x: servers.A?.address });
    expect(await readAll(connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'x' } }))).toBe(
      'A',
    );
    expect(await proxy.metrics()).toContain('picop_proxy_routes_reload_failures_total 3');
  });

  it('refuses a bad file at start, and routes given twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'picop-routes-'));
    const file = join(dir, 'routes.json');
    writeFileSync(file, '[1]');
    // HAProxy exits at start (the action's load fails).
    await expect(startProxy({ listen: '127.0.0.1:0', routesFile: file })).rejects.toThrow(
      ON_HAPROXY ? /exited/ : expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
    writeFileSync(file, '{}');
    expect(() =>
      createProxy({ listen: '127.0.0.1:0', routesFile: file, routes: { a: '127.0.0.1:1' } }),
    ).toThrow(expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }));
  });
});
