import net from 'node:net';
import { connect } from '@picop/net-wrap';
import type { ProxyOptions } from '@picop/proxy';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startProxy, type TestProxy } from './engine.js';

/** A tiny RESP client over one socket: enough to SET and GET through the proxy in tests. */
export class RespClient {
  readonly socket: net.Socket;
  #buffer = Buffer.alloc(0);
  #waiting: Array<(reply: string | null) => void> = [];

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#drain();
    });
    socket.on('error', () => {});
  }

  /** Connects through the proxy with `envId` in the header (none: an empty header). */
  static viaProxy(port: number, envId?: string): RespClient {
    return new RespClient(
      connect({ host: '127.0.0.1', port, fields: envId === undefined ? {} : { 'Env-Id': envId } }),
    );
  }

  static direct(port: number): RespClient {
    return new RespClient(net.connect({ host: '127.0.0.1', port }));
  }

  command(...args: string[]): Promise<string | null> {
    const wire = `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.socket.write(wire);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  #drain(): void {
    for (;;) {
      const text = this.#buffer.toString('latin1');
      const eol = text.indexOf('\r\n');
      if (eol < 0) return;
      let reply: string | null;
      let used: number;
      if (text[0] === '$') {
        const n = Number(text.slice(1, eol));
        if (n < 0) {
          reply = null;
          used = eol + 2;
        } else {
          if (text.length < eol + 2 + n + 2) return;
          reply = text.slice(eol + 2, eol + 2 + n);
          used = eol + 2 + n + 2;
        }
      } else {
        reply = text.slice(0, eol);
        used = eol + 2;
      }
      this.#buffer = this.#buffer.subarray(used);
      this.#waiting.shift()?.(reply);
    }
  }
}

/** A destination that echoes what it gets, and on the client's FIN sends "bye" and closes. */
export async function echoServer(): Promise<{
  port: number;
  server: net.Server;
  connections: () => number;
}> {
  let connections = 0;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections++;
    socket.on('error', () => {});
    socket.on('data', (d) => socket.write(d));
    socket.on('end', () => socket.end('bye'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    server,
    connections: () => connections,
  };
}

/** Everything a socket receives until it closes. */
export function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d) => (text += d));
    socket.on('close', () => resolve(text));
    socket.on('error', () => {});
  });
}

/**
 * An echo server for the file, and `start(options)`: a listening proxy (on the engine under test)
 * whose default route (and, with `routes`, more) is the echo server, closed after each test.
 */
export function useEchoProxies(routes: string[] = []) {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  const proxies: TestProxy[] = [];
  beforeAll(async () => {
    echo = await echoServer();
  });
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close(50)));
  });
  afterAll(() => {
    echo.server.close();
  });
  return {
    async start(options: Partial<ProxyOptions> = {}) {
      const to = `127.0.0.1:${echo.port}`;
      const proxy = await startProxy({
        listen: '127.0.0.1:0',
        defaultRoute: to,
        routes: Object.fromEntries(routes.map((envId) => [envId, to])),
        ...options,
      });
      proxies.push(proxy);
      return { proxy, port: proxy.port };
    },
  };
}
