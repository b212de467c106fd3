import net from 'node:net';
import tls from 'node:tls';
import { type Context, context as otelContext, type TextMapPropagator } from '@opentelemetry/api';
import { type Dialect, encodeHeader, type FieldsInit, PicopError } from '@picop/codec';
import { headerForContext } from '@picop/propagator';
import { DEFAULT_KEEP_ALIVE_INITIAL_DELAY_MS } from './constants.js';

/** What decides the header a new socket starts with; added to Node's own connect options. */
export interface PicopSocketOptions {
  /**
   * Context whose Env-Id the header carries.
   * @default the active context
   */
  context?: Context;
  /**
   * Propagator that turns the context into header fields.
   * @default `EnvIdPropagator` alone
   */
  propagator?: TextMapPropagator;
  /** Explicit header fields, instead of the context's. */
  fields?: FieldsInit;
  /** An already encoded header, instead of `fields` or the context's (what `ContextPools` hands out). */
  header?: Buffer;
  /** @default 'spec' */
  dialect?: Dialect;
}

/** `net.connect` options plus {@link PicopSocketOptions}. */
export type PicopConnectOptions = net.TcpNetConnectOpts & PicopSocketOptions;

/** `tls.connect` options plus {@link PicopSocketOptions}. */
export type PicopTlsConnectOptions = tls.ConnectionOptions & PicopSocketOptions;

/** The header a socket opened with these options starts with (empty: send none). */
export function headerOf(options: PicopSocketOptions): Buffer {
  if (options.header !== undefined) return options.header;
  if (options.fields !== undefined)
    return encodeHeader(options.fields, { dialect: options.dialect ?? 'spec' });
  return headerForContext(options.context ?? otelContext.active(), {
    propagator: options.propagator,
    dialect: options.dialect,
  });
}

function withoutPicopOptions<T extends PicopSocketOptions>(
  options: T,
): Omit<T, keyof PicopSocketOptions> {
  const { context: _c, propagator: _p, fields: _f, header: _h, dialect: _d, ...rest } = options;
  return rest;
}

function openTcp(options: net.TcpNetConnectOpts, listener?: () => void): net.Socket {
  // createConnection, as ioredis and mysql2 call it (tests that stub it reach these sockets too).
  return net.createConnection(
    {
      keepAlive: true,
      keepAliveInitialDelay: DEFAULT_KEEP_ALIVE_INITIAL_DELAY_MS,
      noDelay: true,
      ...options,
    },
    listener,
  );
}

/**
 * `net.connect` whose socket starts with the PiCoP header of the active context (or of
 * `options.context` / `options.fields`), before any byte the caller writes. No-delay is on, and
 * TCP keep-alive is on with a 30 s initial delay unless the options say otherwise. Connect errors
 * are the socket's own.
 *
 * @example
 * const socket = connect({ host: 'mysql-proxy', port: 3306 }); // header of the active Env-Id
 */
export function connect(options: PicopConnectOptions, connectListener?: () => void): net.Socket {
  const header = headerOf(options);
  const socket = openTcp(withoutPicopOptions(options), connectListener);
  // Written before the caller gets the socket, so before any byte of theirs; Node queues it
  // until the connection is up. One write: the proxy can read the header from one segment.
  if (header.length > 0) socket.write(header);
  refuseSecondConnect(socket, options);
  return socket;
}

/**
 * A library given a socket may connect it itself (node-postgres's `stream`): Node would fail that
 * second `connect()` with EALREADY, saying nothing of why. To the address the socket is already
 * connecting to, it is a no-op (the 'connect' event the library waits for comes); to any other,
 * the socket is closed and `ERR_PICOP_UNSUPPORTED` names what to use.
 */
function refuseSecondConnect(socket: net.Socket, options: net.TcpNetConnectOpts): void {
  const own = { port: Number(options.port), host: options.host ?? 'localhost' };
  socket.connect = function connectAgain(...args: unknown[]) {
    const [first, second] = args;
    const target =
      typeof first === 'object' && first !== null
        ? (first as { port?: unknown; host?: unknown })
        : { port: first, host: typeof second === 'string' ? second : undefined };
    if (Number(target.port) === own.port && (target.host ?? 'localhost') === own.host) {
      const listener = args.find((a) => typeof a === 'function') as (() => void) | undefined;
      if (listener !== undefined) socket.once('connect', listener);
      return socket;
    }
    socket.destroy();
    throw new PicopError(
      'ERR_PICOP_UNSUPPORTED',
      `connect(): this socket already connects to ${own.host}:${own.port}, not ${String(target.host ?? 'localhost')}:${String(target.port)}: for a library that connects the socket it is given, give it an unconnected one (node-postgres's \`stream\`: pgStream(env) from @picop/pg)`,
    );
  } as net.Socket['connect'];
}

/**
 * `tls.connect` over a TCP socket that first carries the PiCoP header in clear (the proxy routes
 * TCP), then the TLS handshake.
 *
 * @example
 * const socket = connectTls({ host: 'redis-proxy', port: 6380, servername: 'redis.internal' });
 */
export function connectTls(
  options: PicopTlsConnectOptions,
  secureConnectListener?: () => void,
): tls.TLSSocket {
  const header = headerOf(options);
  const tlsOptions = withoutPicopOptions(options);
  // net.connect takes the address and socket options and ignores the TLS ones.
  const raw = openTcp(tlsOptions as net.TcpNetConnectOpts);
  // Written on connect by a listener that runs before the TLS socket's own (which starts the
  // handshake). Written earlier, a pending write makes Node report a connect error twice.
  if (header.length > 0) raw.once('connect', () => raw.write(header));
  const servername =
    tlsOptions.servername ??
    (tlsOptions.host && net.isIP(tlsOptions.host) === 0 ? tlsOptions.host : undefined);
  return tls.connect({ ...tlsOptions, servername, socket: raw }, secureConnectListener);
}
