// node-redis makes its sockets itself, with `net.createConnection` (or `net.connect`) and
// `tls.connect` given a copy of the client's `socket` options, and has no option for a socket
// factory. So each client's `socket` options carry, under a private symbol, the function that
// opens its sockets with its environment's PiCoP header; `net` and `tls` are wrapped once to call
// it for options that carry it, and to do exactly what they did for every other caller.
import net from 'node:net';
import tls from 'node:tls';
import { PicopError } from '@picop/codec';
import {
  connect,
  connectTls,
  type PicopConnectOptions,
  type PicopTlsConnectOptions,
} from '@picop/net-wrap';
import { unsupportedVersion } from '@picop/net-wrap/internal';

/** Shared by every copy of this package in a process, so that one hook serves them all. */
const OPEN = Symbol.for('@picop/node-redis.open');

type Opener = (options: Record<PropertyKey, unknown>, secure: boolean) => net.Socket;
type Connect = (...args: unknown[]) => unknown;

function hooked(original: Connect, secure: boolean): Connect {
  return function picopSocket(this: unknown, ...args: unknown[]): unknown {
    const options = args[0];
    const open =
      typeof options === 'object' && options !== null
        ? (options as Record<PropertyKey, unknown>)[OPEN]
        : undefined;
    if (typeof open !== 'function') return Reflect.apply(original, this, args);
    return (open as Opener)(options as Record<PropertyKey, unknown>, secure);
  };
}

let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  const modules = { net, tls } as unknown as Record<'net' | 'tls', Record<string, Connect>>;
  modules.net.createConnection = hooked(modules.net.createConnection as Connect, false);
  modules.net.connect = hooked(modules.net.connect as Connect, false);
  modules.tls.connect = hooked(modules.tls.connect as Connect, true);
}

/**
 * node-redis `socket` options whose every socket (the first and each reconnect) starts with
 * `header`; with `tls: true` the header goes in clear, then TLS over the same socket. `opened`
 * is told of each one.
 */
export function withHeader<S extends object>(
  socket: S | undefined,
  header: Buffer,
  opened: () => void,
): S {
  install();
  const open: Opener = (options, secure) => {
    const { [OPEN]: _open, ...rest } = options;
    opened();
    // node-redis's own options for net.createConnection / tls.connect, as it would have passed them.
    const address = { ...rest, header } as unknown as PicopConnectOptions & PicopTlsConnectOptions;
    return secure ? connectTls(address) : connect(address);
  };
  return { ...socket, [OPEN]: open } as S;
}

/**
 * The self-check of a client whose sockets should all come from {@link withHeader}: a socket that
 * connected without it (a node-redis that opens its sockets another way) would carry no header,
 * and its commands could land in the baseline. Such a client is destroyed at its 'connect', before
 * its first command, and `fail` gets `ERR_PICOP_UNSUPPORTED` naming the installed version.
 * Returns the `opened` callback to give {@link withHeader}.
 */
export function checkSockets(
  client: { prependListener(event: 'connect', listener: () => void): unknown; destroy(): void },
  label: string,
  fail: (err: PicopError) => void,
): () => void {
  let pending = 0;
  client.prependListener('connect', () => {
    if (pending > 0) {
      pending--;
      return;
    }
    client.destroy();
    fail(
      unsupportedVersion({
        label,
        library: 'redis',
        missing: [
          'sockets made with net.createConnection or tls.connect from its `socket` options',
        ],
        range: '^5.0.1 || ^6.0.0',
        installed: { from: import.meta.url },
      }),
    );
  });
  return () => {
    pending++;
  };
}

/** Throws for `socket` options a header cannot go with. */
export function checkSocketOptions(socket: { path?: unknown } | undefined, url: unknown): void {
  if (socket?.path !== undefined || (typeof url === 'string' && url.startsWith('unix:'))) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      '@picop/node-redis connects over TCP to a PiCoP proxy: a unix socket cannot carry the header; set `picop: false` to use it',
    );
  }
}
