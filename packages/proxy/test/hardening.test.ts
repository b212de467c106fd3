import net from 'node:net';
import { decodeHeader, encodeHeader } from '@picop/codec';
import { connect } from '@picop/net-wrap';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { echoServer, readAll } from './helpers.js';

describe('proxy hardening', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  const proxies: PicopProxy[] = [];
  const start = async (options: Partial<Parameters<typeof createProxy>[0]> = {}) => {
    const proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `127.0.0.1:${echo.port}`,
      routes: { 'feature-1': `127.0.0.1:${echo.port}` },
      ...options,
    });
    proxies.push(proxy);
    return { proxy, port: (await proxy.listen()).port };
  };
  beforeAll(async () => {
    echo = await echoServer();
  });
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close(50)));
  });
  afterAll(() => {
    echo.server.close();
  });

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
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await received).toBe('hello');
    expect(busy.destroyed).toBe(false);
    busy.end();
    expect(await busyReceived).toBe('xxxxxxbye');
    expect(proxy.stats().byEnv['feature-1']?.failed).toEqual({ idle_timeout: 1 });
  });

  it('counts bytes as they flow, before the connection closes', async () => {
    const { proxy, port } = await start();
    const client = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
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
    const stats = proxy.stats().byEnv['feature-1'];
    expect(stats).toMatchObject({ active: 1, bytesToDestination: 3000, bytesToClient: 3000 });
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
    expect(proxy.stats().byEnv.big?.failed).toEqual({});
  });

  it('tells a client that sent no header what to do, naming --header-timeout', async () => {
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
    expect(proxy.connections).toBe(0);
  });
});
