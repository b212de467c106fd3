import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { decodeHeader, encodeHeader } from '@picop/codec';
import { connect } from '@picop/net-wrap';
import type { createProxy } from '@picop/proxy';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ON_HAPROXY, startProxy } from './engine.js';
import { echoServer, readAll, useEchoProxies } from './helpers.js';

describe('proxy hardening', () => {
  const { start } = useEchoProxies(['feature-1']);

  it('closes a relayed connection silent both ways for idleTimeoutMs, and counts it', async () => {
    const { proxy, port } = await start({ idleTimeoutMs: 300 });
    // A peer that vanished looks like this to the proxy: no byte, no FIN, no RST.
    const silent = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
    silent.write('hello');
    const received = readAll(silent);
    // A busy connection meanwhile, a byte every 100 ms for longer than the timeout, stays open.
    const busy = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
    const busyReceived = readAll(busy);
    for (let i = 0; i < 6; i++) {
      busy.write('x');
      // pacing: a byte every 100 ms is the load under test
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await received).toBe('hello');
    expect(busy.destroyed).toBe(false);
    busy.end();
    expect(await busyReceived).toBe('xxxxxxbye');
    // A difference, pinned: HAProxy closes it (its client and server timeouts) but counts no
    // failure for it.
    expect((await proxy.stats()).byEnv['feature-1']?.failed).toEqual(
      ON_HAPROXY ? {} : { idle_timeout: 1 },
    );
  });

  it('counts bytes as they flow, before the connection closes', async () => {
    const { proxy, port } = await start();
    const fields = { 'Env-Id': 'feature-1' };
    const client = connect({ host: '127.0.0.1', port, fields });
    const echoed = new Promise<void>((resolve) => {
      let n = 0;
      client.on('data', (d) => {
        n += d.length;
        if (n === 3000) resolve();
      });
    });
    client.write('a'.repeat(1000));
    client.write('b'.repeat(2000));
    await echoed;
    if (proxy.node === undefined) {
      // A difference, pinned: HAProxy counts a relayed connection's bytes in its own exporter, for
      // the frontend (the header's included), not by Env-Id, and not before the connection ends.
      const bytes = async (direction: string) =>
        Number(
          (await proxy.metrics()).match(
            new RegExp(
              `^haproxy_frontend_bytes_${direction}_total\\{proxy="picop"\\} (\\d+)$`,
              'm',
            ),
          )?.[1],
        );
      expect([await bytes('in'), await bytes('out')]).toEqual([0, 0]);
      client.end();
      // HAProxy gives no event for a connection's end: its counters are watched.
      await vi.waitFor(async () =>
        expect([await bytes('in'), await bytes('out')]).toEqual([
          3000 + encodeHeader(fields).length,
          3000 + 'bye'.length,
        ]),
      );
    } else {
      expect(proxy.node.stats().byEnv['feature-1']).toMatchObject({
        active: 1,
        bytesToDestination: 3000,
        bytesToClient: 3000,
      });
    }
    client.destroy();
  });

  it('with propagate, re-sends a header accepted under a raised maxHeaderBytes', async () => {
    const got: Buffer[] = [];
    const received = new Promise<Buffer>((resolve) => {
      const server = net.createServer((socket) => {
        socket.on('data', (d) => got.push(d));
        socket.on('end', () => {
          resolve(Buffer.concat(got));
          server.close();
          socket.end();
        });
      });
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as net.AddressInfo).port;
        ready(port);
      });
    });
    let ready: (port: number) => void = () => {};
    const destPort = await new Promise<number>((resolve) => {
      ready = resolve;
    });
    const { proxy, port } = await start({
      routes: { big: `127.0.0.1:${destPort}` },
      propagate: true,
      maxHeaderBytes: 9000,
    });
    const fields = { 'Env-Id': 'big', 'X-Note': 'n'.repeat(6000) };
    const header = encodeHeader(fields, { maxLength: 9000 });
    const client = connect({ host: '127.0.0.1', port, header });
    client.end('payload');
    const bytes = await received;
    const decoded = decodeHeader(bytes, { maxLength: 9000 });
    expect(decoded.fields.get('X-Note')).toHaveLength(6000);
    expect(bytes.subarray(decoded.byteLength).toString()).toBe('payload');
    expect((await proxy.stats()).byEnv.big?.failed).toEqual({});
  });

  // HAProxy logs in its own format (picop.lua writes warnings only): these two are picop-proxy's.
  it.skipIf(ON_HAPROXY)(
    'tells a client that sent no header what to do, naming --header-timeout',
    async () => {
      const lines: Array<Record<string, unknown>> = [];
      const logger = {
        info: (obj: Record<string, unknown>) => lines.push(obj),
        debug: () => {},
        error: () => {},
      };
      const { port } = await start({
        headerTimeoutMs: 100,
        logger: logger as unknown as Parameters<typeof createProxy>[0]['logger'],
      });
      const mute = net.connect({ host: '127.0.0.1', port });
      await readAll(mute);
      expect(String(lines[0]?.err)).toMatch(
        /No PiCoP header within 100 ms.*wrapped.*--header-timeout/,
      );
    },
  );

  it.skipIf(ON_HAPROXY)(
    'logs where a connection goes when routing is decided, not only when it closes',
    async () => {
      const lines: Array<[Record<string, unknown>, string]> = [];
      const logger = {
        info: () => {},
        debug: (obj: Record<string, unknown>, msg: string) => lines.push([obj, msg]),
        error: () => {},
      };
      const { port } = await start({
        logger: logger as unknown as Parameters<typeof createProxy>[0]['logger'],
      });
      const client = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
      client.write('x');
      await new Promise((r) => client.once('data', r));
      // Still open: the line is there already.
      expect(lines).toEqual([
        [
          expect.objectContaining({ envId: 'feature-1', destination: expect.any(String) }),
          'routed',
        ],
      ]);
      client.destroy();
    },
  );

  it('closes connections past maxConnections on accept, and counts them', async () => {
    const { proxy, port } = await start({ maxConnections: 2 });
    const open = [1, 2].map(() => {
      const c = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
      c.write('x');
      return new Promise<net.Socket>((resolve) => c.once('data', () => resolve(c)));
    });
    const clients = await Promise.all(open);
    const third = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
    if (ON_HAPROXY) {
      // A difference, pinned: HAProxy does not accept past its maxconn (the kernel holds the
      // connection), and accepts it once one closes.
      third.write('x');
      await once(third, 'connect');
      expect(await proxy.connections()).toBe(2);
      const echoed = once(third, 'data');
      clients[0]?.destroy();
      expect(String((await echoed)[0])).toBe('x');
      for (const c of [...clients, third]) c.destroy();
      return;
    }
    expect(await readAll(third)).toBe('');
    expect((await proxy.stats()).byEnv._unknown?.failed).toEqual({ max_connections: 1 });
    expect(await proxy.connections()).toBe(2);
    for (const c of clients) c.destroy();
  });

  it('close() waits for an open connection, and resolves when it ends', async () => {
    const { proxy, port } = await start();
    const client = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
    client.write('x');
    await new Promise((r) => client.once('data', r));
    let closed = false;
    const closing = proxy.close(60_000).then(() => {
      closed = true;
    });
    expect(closed).toBe(false);
    client.end();
    await closing;
    expect(await proxy.connections()).toBe(0);
  });
});

describe('proxy hardening, with real sockets gone', () => {
  it('opens and closes 10,000 connections with no file descriptor left behind', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const echo = await echoServer();
    const proxy = await startProxy({
      listen: '127.0.0.1:0',
      routes: { 'feature-1': `127.0.0.1:${echo.port}` },
    });
    const { port } = proxy;
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next++ < 10_000) {
          const client = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
          const reply = readAll(client);
          client.end('x');
          if ((await reply) !== 'xbye') throw new Error('relay failed');
        }
      }),
    );
    expect(await proxy.stats()).toMatchObject({ accepted: 10_000, failed: 0 });
    // close() resolves once every relay has ended (and closes the listener).
    await proxy.close(10_000);
    echo.server.close();
    await once(echo.server, 'close');
    expect(fds()).toBeLessThanOrEqual(before);
  }, 120_000);

  // Needs iproute2 and the right to make network namespaces (root, as in CI here).
  const probe = `picopprobe${process.pid}`;
  const ipNetns =
    spawnSync('ip', ['netns', 'add', probe]).status === 0 &&
    spawnSync('ip', ['netns', 'del', probe]).status === 0;
  it.runIf(ipNetns)(
    'closes the relay of a client whose link was cut (no FIN, no RST) after the idle timeout',
    async () => {
      // A client in a network namespace behind a veth pair; cutting the pair silences it.
      const id = `picop${process.pid}`;
      const subnet = `10.231.${process.pid % 250}`;
      const [hostIp, nsIp] = [`${subnet}.1`, `${subnet}.2`];
      const ip = (...args: string[]) => execFileSync('ip', args);
      removeNetns = () => {
        spawnSync('ip', ['link', 'del', `${id}h`]);
        spawnSync('ip', ['netns', 'del', id]);
      };
      ip('netns', 'add', id);
      try {
        ip('link', 'add', `${id}h`, 'type', 'veth', 'peer', 'name', `${id}n`);
        ip('link', 'set', `${id}n`, 'netns', id);
        ip('addr', 'add', `${hostIp}/30`, 'dev', `${id}h`);
        ip('link', 'set', `${id}h`, 'up');
        ip('netns', 'exec', id, 'ip', 'addr', 'add', `${nsIp}/30`, 'dev', `${id}n`);
        ip('netns', 'exec', id, 'ip', 'link', 'set', `${id}n`, 'up');

        let closedAtEcho: () => void = () => {};
        const echoClosed = new Promise<void>((resolve) => {
          closedAtEcho = resolve;
        });
        const echo = net.createServer((socket) => {
          socket.on('data', (d) => socket.write(d));
          socket.on('error', () => {});
          socket.on('close', () => closedAtEcho());
        });
        await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
        const proxy = await startProxy({
          listen: `${hostIp}:0`,
          routes: { 'feature-1': `127.0.0.1:${(echo.address() as net.AddressInfo).port}` },
          idleTimeoutMs: 500,
        });
        const { port } = proxy;
        const header = encodeHeader({ 'Env-Id': 'feature-1' }).toString('hex');
        const script = `const s = require('net').connect(${port}, '${hostIp}'); s.write(Buffer.from('${header}', 'hex')); s.write('hi'); s.on('data', () => console.log('echoed'));`;
        const child = spawn('ip', ['netns', 'exec', id, process.execPath, '-e', script], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
        expect(await proxy.connections()).toBe(1);
        // The link goes: nothing more reaches the proxy from that client, not even a RST.
        ip('link', 'del', `${id}h`);
        child.kill('SIGKILL');
        await echoClosed;
        // close() resolves once the relay has ended; a relay still open would hold it 60 s.
        await proxy.close(60_000);
        // (HAProxy counts no failure for it, as above.)
        if (!ON_HAPROXY) {
          expect((await proxy.stats()).byEnv['feature-1']?.failed).toEqual({ idle_timeout: 1 });
        }
        echo.close();
      } finally {
        removeNetns();
      }
    },
  );
  // Also when the test times out (its finally then never runs).
  let removeNetns = () => {};
  afterAll(() => removeNetns());
});
