import type http from 'node:http';
import type { Socket } from 'node:net';
import {
  type Context,
  context,
  diag,
  ROOT_CONTEXT,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { contextFromFields } from '@picop/propagator';
import { defaultConnectionPropagator } from '@picop/propagator/internal';
import { peerOf, type ReadHeaderOptions, readHeader } from './readHeader.js';

/** Options of {@link acceptPicop}. */
export interface AcceptPicopOptions extends ReadHeaderOptions {
  /**
   * Propagator that turns the header's fields into a context.
   * @default `EnvIdPropagator` alone
   */
  propagator?: TextMapPropagator;
}

const socketContexts = new WeakMap<Socket, Context>();

/** The context extracted from the PiCoP header of a socket accepted by an {@link acceptPicop} server. */
export function contextOfSocket(socket: Socket): Context | undefined {
  return socketContexts.get(socket);
}

/**
 * Makes an `http.Server` or `https.Server` read the PiCoP header of every connection before HTTP
 * (or TLS) parsing, and run each request handler of that connection in the context extracted from
 * it: `getEnvId()` and every outgoing call made by the handler carry that Env-Id. The header's
 * fields are also added to the request's headers when the request does not carry them itself, so
 * `@opentelemetry/instrumentation-http`, which extracts from headers alone, sees them too.
 * A connection with a bad or late header is closed. Use `mode: 'optional'` to accept plain HTTP
 * clients as well. Returns the server.
 *
 * @example
 * const server = acceptPicop(http.createServer(handler), { mode: 'optional' });
 */
export function acceptPicop<S extends http.Server>(server: S, options: AcceptPicopOptions = {}): S {
  const propagator = options.propagator ?? defaultConnectionPropagator;
  const listeners = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    readHeader(socket, options).then(
      (fields) => {
        if (fields !== undefined) {
          socketContexts.set(socket, contextFromFields(fields, ROOT_CONTEXT, propagator));
        }
        for (const listener of listeners) listener.call(server, socket);
        // The HTTP (or TLS) layer starts reading; the header's bytes are gone, the rest is buffered.
        socket.resume();
      },
      (err: Error) => {
        diag.warn(`picop: connection from ${peerOf(socket)} closed: ${err.message}`);
      },
    );
  });

  const emit = server.emit as (this: S, event: string | symbol, ...args: unknown[]) => boolean;
  server.emit = function picopEmit(this: S, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'request') {
      const req = args[0] as http.IncomingMessage;
      const connectionContext = socketContexts.get(req.socket) ?? tlsParentContext(req.socket);
      if (connectionContext !== undefined) {
        propagator.inject(connectionContext, req.headers, headersSetterIfAbsent);
        return context.with(connectionContext, () => emit.call(this, event, ...args));
      }
    }
    return emit.call(this, event, ...args);
  } as S['emit'];
  return server;
}

// An https.Server's requests arrive on the TLSSocket that wraps the accepted TCP socket.
function tlsParentContext(socket: Socket): Context | undefined {
  const parent = (socket as Socket & { _parent?: unknown; _parentWrap?: unknown })._parent;
  return parent instanceof Object ? socketContexts.get(parent as Socket) : undefined;
}

const headersSetterIfAbsent = {
  set(carrier: http.IncomingHttpHeaders, key: string, value: string): void {
    const name = key.toLowerCase();
    if (carrier[name] === undefined) carrier[name] = value;
  },
};
