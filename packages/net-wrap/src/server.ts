import http from 'node:http';
import type { Socket } from 'node:net';
import {
  type Context,
  context,
  defaultTextMapGetter,
  diag,
  propagation,
  ROOT_CONTEXT,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import { contextFromFields, getEnvId } from '@picop/propagator';
import { defaultConnectionPropagator } from '@picop/propagator/internal';
import { peerOf, type ReadHeaderOptions, readHeader } from './readHeader.js';

/** Options of {@link acceptPicop}. */
export interface AcceptPicopOptions extends ReadHeaderOptions {
  /**
   * Propagator that turns the header's fields into a context.
   * @default `EnvIdPropagator` alone
   */
  propagator?: TextMapPropagator;
  /**
   * A response header naming the Env-Id each request's handler ran in (empty for the baseline),
   * set as the response's head is written unless the handler set it: to see which environment
   * served a request.
   * @default none
   */
  responseHeader?: string;
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
  const { responseHeader } = options;
  if (responseHeader !== undefined) {
    try {
      http.validateHeaderName(responseHeader);
    } catch {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `acceptPicop: responseHeader ${JSON.stringify(responseHeader)} is not an HTTP header name`,
      );
    }
  }
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
      if (responseHeader !== undefined) namesEnvId(args[1] as http.ServerResponse, responseHeader);
      if (connectionContext !== undefined) {
        propagator.inject(connectionContext, req.headers, headersSetterIfAbsent);
        if (!checkedExtraction) checkExtraction(emit, connectionContext, req.headers);
        return context.with(connectionContext, () => emit.call(this, event, ...args));
      }
    }
    return emit.call(this, event, ...args);
  } as S['emit'];
  return server;
}

/** Sets `name` to the Env-Id active when the response's head is written (the handler's). */
function namesEnvId(res: http.ServerResponse, name: string): void {
  const writeHead = res.writeHead as (...args: unknown[]) => http.ServerResponse;
  res.writeHead = function picopWriteHead(this: http.ServerResponse, ...args: unknown[]) {
    if (!this.headersSent && !this.hasHeader(name)) this.setHeader(name, getEnvId() ?? '');
    return writeHead.apply(this, args);
  } as http.ServerResponse['writeHead'];
}

let checkedExtraction = false;

/**
 * Once per process, at the first request whose connection carries an Env-Id: when the HTTP
 * instrumentation will run the handler in a context it extracts from the request's headers with
 * the global propagator, and that propagator does not read the Env-Id, the handler would lose
 * it: one warning saying so.
 */
function checkExtraction(
  emit: unknown,
  connectionContext: Context,
  headers: http.IncomingHttpHeaders,
): void {
  const envId = getEnvId(connectionContext);
  if (envId === undefined) return;
  checkedExtraction = true;
  if (!(emit as { __wrapped?: boolean }).__wrapped) return;
  if (getEnvId(propagation.extract(ROOT_CONTEXT, headers, defaultTextMapGetter)) === envId) return;
  process.emitWarning(
    `acceptPicop: a connection carried Env-Id ${envId}, but the HTTP instrumentation runs each handler in a context it extracts with the global propagator, which does not read the Env-Id: handlers run in the baseline. Add EnvIdPropagator to the NodeSDK's textMapPropagator`,
    { type: 'PicopWarning', code: 'PICOP_ENV_ID_LOST' },
  );
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
