// PiCoP on HAProxy: `picop-haproxy`'s configuration and the Lua action (haproxy/picop.lua) run in a
// real HAProxy, in front of destinations that tell who they are and what bytes reached them.
// Skipped where HAProxy is not installed (CI installs it).
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { encodeHeader } from '@picop/codec';
import type { ProxyOptions } from '@picop/proxy';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { listen } from '../../../test/support/servers.js';
import { HAVE_HAPROXY, startHaproxy, type TestProxy } from './engine.js';

const stops: Array<() => void> = [];
afterAll(() => {
  for (const stop of stops) stop();
});

/**
 * A destination that answers a connection's bytes with `<name>:<bytes as hex>` once "ping" (the
 * client's last write) arrived, and closes; "hold" is answered with its name alone, open.
 */
async function destination(name: string): Promise<number> {
  const server = net.createServer((socket) => {
    let received = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      const last = received.subarray(-4).toString();
      if (last === 'ping') socket.end(`${name}:${received.toString('hex')}`);
      if (last === 'hold') socket.write(name);
    });
  });
  const port = await listen(server);
  stops.push(() => server.close());
  return port;
}

/** HAProxy running picop-haproxy's configuration of `options` (listening on a free port). */
async function haproxy(options: Omit<ProxyOptions, 'listen'>): Promise<TestProxy> {
  const proxy = await startHaproxy({ listen: '127.0.0.1:0', ...options });
  stops.push(() => proxy.close(0));
  return proxy;
}

/** Connects, writes `chunks` (one write each, in order), then "ping"; what came back, or "closed". */
async function exchange(port: number, chunks: Buffer[]): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await once(socket, 'connect');
  for (const chunk of chunks) {
    socket.write(chunk);
    // One segment each: the action sees the header arrive in pieces.
    await new Promise((resolve) => setImmediate(resolve));
  }
  socket.write('ping');
  let answer = '';
  socket.on('data', (d) => {
    answer += d;
  });
  await once(socket, 'close');
  return answer === '' ? 'closed' : answer;
}

const hex = (bytes: string | Buffer) => Buffer.from(bytes).toString('hex');
const ping = hex('ping');
const header = (envId?: string) => encodeHeader(envId === undefined ? {} : { 'Env-Id': envId });
const bytesOf = (b: Buffer) => [...b].map((x) => Buffer.of(x));

describe('picop-haproxy', () => {
  const bin = fileURLToPath(new URL('../bin/picop-haproxy.js', import.meta.url));
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    promisify(execFile)(process.execPath, [bin, ...args], { env: { ...process.env, ...env } }).then(
      ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );

  it("prints HAProxy's configuration from picop-proxy's flags and variables", async () => {
    const { code, stdout } = await run(
      ['--listen', '0.0.0.0:6379', '--route', 'f1=10.0.0.6:6379'],
      {
        PICOP_PROXY_DEFAULT: 'redis-main:6379',
        PICOP_HAPROXY_LUA_FILE: '/haproxy/picop.lua',
      },
    );
    expect(code).toBe(0);
    expect(stdout).toContain('  bind 0.0.0.0:6379\n');
    expect(stdout).toContain('  setenv PICOP_HAPROXY_DEFAULT "redis-main:6379"\n');
    expect(stdout).toContain('  setenv PICOP_HAPROXY_ROUTES "f1=10.0.0.6:6379"\n');
    expect(stdout).toContain('  lua-load "/haproxy/picop.lua"\n');
  });

  it('refuses what HAProxy cannot do, and misspelt flags, with exit 2', async () => {
    const refused = await run(['--listen', ':1', '--controller-url', 'http://c', '--id', 'p1']);
    expect(refused).toMatchObject({ code: 2, stderr: expect.stringMatching(/controllerUrl/) });
    expect(await run(['--listen', ':1', '--rout', 'a=b:1'])).toMatchObject({ code: 2 });
  });
});

describe.skipIf(!HAVE_HAPROXY)('PiCoP on HAProxy (picop-haproxy + picop.lua)', () => {
  it('routes by Env-Id, strips the header, and sends the rest untouched; baseline to the default', async () => {
    const main = await destination('main');
    const feature = await destination('feature-1');
    const proxy = await haproxy({
      defaultRoute: `127.0.0.1:${main}`,
      routes: { 'feature-1': `127.0.0.1:${feature}` },
    });
    const { port } = proxy;
    expect(await exchange(port, [header('feature-1')])).toBe(`feature-1:${ping}`);
    expect(await exchange(port, [header()])).toBe(`main:${ping}`);
    expect(await exchange(port, [header('feature-9')])).toBe(`main:${ping}`);
    // Split into single bytes, the body in the same segments as the header's end.
    expect(
      await exchange(port, bytesOf(Buffer.concat([header('feature-1'), Buffer.from('x')]))),
    ).toBe(`feature-1:${hex('x')}${ping}`);
    const metrics = await proxy.metrics();
    expect(metrics).toContain('picop_proxy_connections_accepted_total{env="feature-1"} 2');
    expect(metrics).toContain('picop_proxy_connections_accepted_total{env="_default"} 2');
  });

  it('500 new connections in a row, each header whole in its first segment: none waits for the inspect delay', async () => {
    const main = await destination('main');
    // A header timeout longer than the test's own: a connection left waiting for it fails the test.
    const { port } = await haproxy({ defaultRoute: `127.0.0.1:${main}`, headerTimeoutMs: 600_000 });
    for (let i = 0; i < 500; i++) {
      expect(await exchange(port, [Buffer.concat([header('feature-1'), Buffer.from('x')])])).toBe(
        `main:${hex('x')}${ping}`,
      );
    }
  });

  it('closes and counts bad headers: no signature, a bad version, a duplicate field, too large, too slow', async () => {
    const main = await destination('main');
    const proxy = await haproxy({
      defaultRoute: `127.0.0.1:${main}`,
      maxHeaderBytes: 64,
      headerTimeoutMs: 300,
    });
    const { port } = proxy;
    const good = header('feature-1');
    const badVersion = Buffer.from(good);
    badVersion[12] = 0x02;
    const duplicate = Buffer.concat([
      good.subarray(0, 13),
      Buffer.from([0, 33]),
      Buffer.from('Env-Id:a\r\nenv-id:b\r\nX-Other:zzzz'),
    ]);
    const large = encodeHeader({ 'Env-Id': 'x'.repeat(100) });
    expect(await exchange(port, [Buffer.from('GET / HTTP/1.1\r\n\r\n')])).toBe('closed');
    expect(await exchange(port, [badVersion])).toBe('closed');
    expect(await exchange(port, [duplicate])).toBe('closed');
    expect(await exchange(port, [large])).toBe('closed');
    // A peer that stalls inside the header: closed at the header timeout.
    const stalled = net.connect({ port, host: '127.0.0.1' });
    stalled.on('error', () => {});
    stalled.write(good.subarray(0, 10));
    await once(stalled, 'close');
    const metrics = await proxy.metrics();
    for (const reason of ['signature', 'version', 'duplicate_field', 'too_large', 'timeout']) {
      expect(metrics).toContain(`env="_unknown",reason="${reason}"`);
    }
  });

  it('optional mode: a client without PiCoP goes to the default route untouched', async () => {
    const main = await destination('main');
    const feature = await destination('feature-1');
    const { port } = await haproxy({
      defaultRoute: `127.0.0.1:${main}`,
      routes: { 'feature-1': `127.0.0.1:${feature}` },
      header: 'optional',
    });
    // Its first byte is the signature's first: decided at the first differing one.
    expect(await exchange(port, bytesOf(Buffer.from('\r\n*1\r\n')))).toBe(
      `main:${hex('\r\n*1\r\n')}${ping}`,
    );
    expect(await exchange(port, [header('feature-1')])).toBe(`feature-1:${ping}`);
  });

  it('the picop-go dialect: a 1-byte length, and its empty header is the baseline', async () => {
    const main = await destination('main');
    const feature = await destination('feature-1');
    const { port } = await haproxy({
      defaultRoute: `127.0.0.1:${main}`,
      routes: { 'feature-1': `127.0.0.1:${feature}` },
      dialect: 'picop-go',
    });
    const go = (context: string) =>
      Buffer.concat([
        Buffer.from('0d0a0d0a000d0a515549540a01', 'hex'),
        Buffer.from([context.length]),
        Buffer.from(context),
      ]);
    expect(await exchange(port, [go('Env-Id:feature-1')])).toBe(`feature-1:${ping}`);
    expect(await exchange(port, [go('')])).toBe(`main:${ping}`);
  });

  it('propagate: the destination receives the header too', async () => {
    const feature = await destination('feature-1');
    const { port } = await haproxy({
      routes: { 'feature-1': `127.0.0.1:${feature}` },
      propagate: true,
    });
    expect(await exchange(port, [header('feature-1')])).toBe(
      `feature-1:${hex(header('feature-1'))}${ping}`,
    );
  });

  it('the routes file: a rewrite (a rename, as a ConfigMap swap) applies to new connections, open ones stay; an invalid one keeps the last good routes, counted', async () => {
    const main = await destination('main');
    const one = await destination('one');
    const two = await destination('two');
    const dir = mkdtempSync(join(tmpdir(), 'picop-haproxy-routes-'));
    const file = join(dir, 'routes.json');
    const write = (text: string) => {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };
    write(JSON.stringify({ 'feature-1': `127.0.0.1:${one}` }));
    const proxy = await haproxy({
      defaultRoute: `127.0.0.1:${main}`,
      routesFile: file,
    });
    const { port } = proxy;
    expect(await exchange(port, [header('feature-1')])).toBe(`one:${ping}`);
    // The Go reference's format too.
    // The action re-reads the file once a second: HAProxy gives no event to wait on.
    const reread = { timeout: 10_000, interval: 100 };
    write(JSON.stringify([{ env_id: 'feature-1', destination: `127.0.0.1:${two}` }]));
    await vi.waitFor(
      async () => expect(await exchange(port, [header('feature-1')])).toBe(`two:${ping}`),
      reread,
    );
    // A difference from picop-proxy, pinned: HAProxy keeps a relayed connection on the route it
    // was given (picop-proxy closes it once quiet, --reroute-quiet, so the client reconnects).
    const held = net.connect({ port, host: '127.0.0.1' });
    held.on('error', () => {});
    held.write(Buffer.concat([header('feature-1'), Buffer.from('hold')]));
    const [first] = await once(held, 'data');
    expect(String(first)).toBe('two');
    write(JSON.stringify({ 'feature-1': `127.0.0.1:${one}` }));
    await vi.waitFor(
      async () => expect(await exchange(port, [header('feature-1')])).toBe(`one:${ping}`),
      reread,
    );
    held.write('hold');
    const [again] = await once(held, 'data');
    expect(String(again)).toBe('two');
    held.destroy();
    write('{ not json');
    await vi.waitFor(
      async () =>
        expect(await proxy.metrics()).toContain('picop_proxy_routes_reload_failures_total 1'),
      reread,
    );
    expect(await exchange(port, [header('feature-1')])).toBe(`one:${ping}`);
  });
});
