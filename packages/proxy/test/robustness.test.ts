import { once } from 'node:events';
import net from 'node:net';
import { connect } from '@picop/net-wrap';
import { describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../test/support/servers.js';
import { ON_HAPROXY } from './engine.js';
import { readAll, useEchoProxies } from './helpers.js';

const HEADER = (env: string) => ({ 'Env-Id': env });

describe('proxy robustness', () => {
  const { start } = useEchoProxies();

  it('closes a peer that stalls mid-header at the timeout; others are served meanwhile', async () => {
    const { proxy, port } = await start({ headerTimeoutMs: 300 });
    const staller = net.connect({ host: '127.0.0.1', port });
    staller.write(Buffer.from('0d0a0d0a000d0a', 'hex'));
    const stallerClosed = readAll(staller);
    const good = connect({ host: '127.0.0.1', port, fields: HEADER('a') });
    good.end('hello');
    expect(await readAll(good)).toBe('hellobye');
    expect(await proxy.connections()).toBe(1); // the staller is still waiting
    expect(await stallerClosed).toBe('');
    expect((await proxy.stats()).byEnv._unknown?.failed).toEqual({ timeout: 1 });
  });

  it('closes the client at once when the destination is unreachable, and counts it', async () => {
    const dead = await freePort();
    // A connect timeout far longer than the test's: closing at all shows the refusal was acted on.
    const { proxy, port } = await start({
      routes: { gone: `127.0.0.1:${dead}` },
      connectTimeoutMs: 60_000,
    });
    const client = connect({ host: '127.0.0.1', port, fields: HEADER('gone') });
    client.write('data');
    expect(await readAll(client)).toBe('');
    if (ON_HAPROXY) {
      // A difference, pinned: HAProxy counts it in its own exporter, by backend, not by Env-Id.
      expect(await proxy.metrics()).toContain(
        'haproxy_backend_connection_errors_total{proxy="picop_destination"} 1',
      );
      return;
    }
    expect((await proxy.stats()).byEnv.gone?.failed).toEqual({ connect_error: 1 });
    expect(await proxy.metrics()).toContain(
      'picop_proxy_connections_failed_total{env="gone",reason="connect_error"} 1',
    );
  });

  it('refuses a header-less client in required mode and an oversized header', async () => {
    const { proxy, port } = await start({ maxHeaderBytes: 8 });
    const plain = net.connect({ host: '127.0.0.1', port });
    plain.write('GET / HTTP/1.1\r\n\r\n');
    expect(await readAll(plain)).toBe('');
    const big = connect({ host: '127.0.0.1', port, fields: HEADER('feature-1') });
    expect(await readAll(big)).toBe('');
    expect((await proxy.stats()).byEnv._unknown?.failed).toEqual({ signature: 1, too_large: 1 });
  });

  it('passes a FIN on while the other direction keeps flowing (half-close)', async () => {
    const { port } = await start();
    const client = connect({ host: '127.0.0.1', port, fields: HEADER('a'), allowHalfOpen: true });
    const received = readAll(client);
    client.write('ping;');
    client.end(); // FIN: the echo server answers "bye" after it sees it, through the proxy
    expect(await received).toBe('ping;bye');
  });

  it('relays large transfers intact in both directions (backpressure)', async () => {
    const { port } = await start();
    const payload = Buffer.alloc(32 * 1024 * 1024, 7);
    for (let i = 0; i < payload.length; i += 4093) payload[i] = i & 0xff;
    const client = connect({ host: '127.0.0.1', port, fields: HEADER('a') });
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve) => client.on('close', () => resolve()));
    client.on('data', (d) => chunks.push(d));
    client.end(payload);
    await done;
    const back = Buffer.concat(chunks);
    expect(back.length).toBe(payload.length + 3);
    expect(back.subarray(0, payload.length).equals(payload)).toBe(true);
  });

  // 256 MiB: more than every kernel buffer on the way can hold (here up to 4 MiB to send and
  // 32 MiB to receive per socket), so only the proxy's reading can stop a writer short of it.
  const TOTAL = 256 * 1024 * 1024;

  it('stops reading the destination while the client does not read, and loses nothing', async () => {
    let written = 0;
    const block = Buffer.alloc(64 * 1024);
    const source = net.createServer((socket) => {
      socket.on('error', () => {});
      const more = () => {
        while (written < TOTAL) {
          for (let i = 0; i < block.length; i += 997) block[i] = (written + i) & 0xff;
          written += block.length;
          if (!socket.write(block)) return;
        }
        socket.end();
      };
      socket.on('drain', more);
      more();
    });
    await new Promise<void>((r) => source.listen(0, '127.0.0.1', r));
    const { port } = await start({
      routes: { big: `127.0.0.1:${(source.address() as net.AddressInfo).port}` },
    });
    const client = connect({ host: '127.0.0.1', port, fields: HEADER('big') });
    client.pause();
    expect(await settled(() => written)).toBeLessThan(TOTAL / 2);
    const chunks: Buffer[] = [];
    client.on('data', (d) => chunks.push(d));
    client.resume();
    await new Promise((r) => client.on('end', r));
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(TOTAL);
    for (let at = 0; at < TOTAL; at += 64 * 1024) {
      expect(got[at + 997]).toBe((at + 997) & 0xff);
    }
    client.destroy();
    source.close();
  });

  it('stops reading the client while the destination does not read, and loses nothing', async () => {
    let received = 0;
    const sinks: net.Socket[] = [];
    const sink = net.createServer((socket) => {
      socket.pause();
      socket.on('data', (d) => (received += d.length));
      sinks.push(socket);
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const { port } = await start({
      routes: { slow: `127.0.0.1:${(sink.address() as net.AddressInfo).port}` },
    });
    const client = connect({ host: '127.0.0.1', port, fields: HEADER('slow') });
    const block = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    const more = () => {
      while (sent < TOTAL) {
        sent += block.length;
        if (!client.write(block)) return;
      }
      client.end();
    };
    client.on('drain', more);
    more();
    expect(await settled(() => sent)).toBeLessThan(TOTAL / 2);
    // Reading at the far end lets the client finish, every byte arriving.
    const sinkSocket = sinks[0] as net.Socket;
    const sinkEnded = once(sinkSocket, 'end');
    sinkSocket.resume();
    await sinkEnded;
    expect(received).toBe(TOTAL);
    client.destroy();
    sink.close();
  });

  it('in optional mode connects a plain peer that sends nothing, and passes its FIN on', async () => {
    const { proxy, port } = await start({ header: 'optional' });
    const client = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const reply = readAll(client);
    client.end();
    expect(await reply).toBe('bye');
    expect((await proxy.stats()).byEnv._plain?.accepted).toBe(1);
  });

  it('counts a peer that closes mid-header as truncated', async () => {
    const { proxy, port } = await start();
    const client = net.connect({ host: '127.0.0.1', port });
    const closed = readAll(client);
    client.end(Buffer.from('0d0a0d0a000d0a', 'hex'));
    expect(await closed).toBe('');
    expect((await proxy.stats()).byEnv._unknown?.failed).toEqual({ truncated: 1 });
    await proxy.close(1000); // resolves once its every connection has ended
    expect(await proxy.connections()).toBe(0);
  });

  it('relays 1,000 concurrent connections with no error', async () => {
    const { proxy, port } = await start();
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => {
        const client = connect({ host: '127.0.0.1', port, fields: HEADER(`env-${i % 7}`) });
        const reply = readAll(client);
        client.end(`#${i}`);
        return reply.then((r) => r === `#${i}bye`);
      }),
    );
    expect(results.filter(Boolean)).toHaveLength(1000);
    const stats = await proxy.stats();
    expect(stats.accepted).toBe(1000);
    expect(stats.failed).toBe(0);
    expect(stats.active).toBe(0);
  });

  it('re-sends the header to the destination with propagate', async () => {
    const { port } = await start({ propagate: true });
    const client = connect({ host: '127.0.0.1', port, fields: HEADER('feature-1') });
    const reply = readAll(client);
    client.end('x');
    const text = await reply;
    expect(text.endsWith('xbye')).toBe(true);
    expect(text).toContain('Env-Id:feature-1');
  });

  it('drains a connection in flight on close(), refusing new ones', async () => {
    const { proxy, port } = await start();
    const client = connect({ host: '127.0.0.1', port, fields: HEADER('a'), allowHalfOpen: true });
    const reply = readAll(client);
    client.write('first;');
    await new Promise((r) => client.once('data', r));
    // close() stops listening at once (HAProxy: once it has acted on its signal).
    const closed = proxy.close(5000);
    const connectLate = () =>
      new Promise<string>((resolve) => {
        const late = net.connect({ host: '127.0.0.1', port });
        late.on('error', (e: NodeJS.ErrnoException) => resolve(String(e.code)));
        late.on('connect', () => {
          late.destroy();
          resolve('connected');
        });
      });
    if (ON_HAPROXY) {
      await vi.waitFor(async () => expect(await connectLate()).toBe('ECONNREFUSED'), {
        interval: 10,
      });
    }
    expect(await connectLate()).toBe('ECONNREFUSED');
    client.end('second;');
    expect(await reply).toBe('first;second;bye');
    await closed;
    expect(await proxy.connections()).toBe(0);
  });

  it('destroys connections still open when the grace period ends', async () => {
    const { proxy, port } = await start();
    const client = connect({ host: '127.0.0.1', port, fields: HEADER('a') });
    client.write('x');
    await new Promise((r) => client.once('data', r));
    const reply = readAll(client);
    await proxy.close(100);
    expect(await reply).toBe('');
    expect(await proxy.connections()).toBe(0);
  });
});

// pacing: see settled()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Resolves with `value()` once it has stayed the same for 100 ms. Not synchronisation: proving
 * that a flow has stopped (backpressure) takes watching it not move.
 */
async function settled(value: () => number): Promise<number> {
  let last: number;
  do {
    last = value();
    // pacing: watching a flow not move
    await sleep(100);
  } while (value() !== last);
  return last;
}
