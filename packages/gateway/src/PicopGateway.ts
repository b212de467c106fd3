import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import { PicopDispatcher } from '@picop/fetch';
import { setEnvId } from '@picop/propagator';
import { type Address, formatAddress, parseAddress, RouteTable } from '@picop/routes';
import type { Dispatcher } from 'undici';
import { DEFAULTS } from './defaults.js';
import { GatewayMetrics, type GatewayMetricsOptions } from './metrics.js';
import { EnvIdSelector, forwardedHeaders, hopByHopOf, type SelectionOptions } from './selection.js';

/** A small logger: pino's, console's, or none. */
export interface GatewayLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Options of {@link createGateway}. */
export interface GatewayOptions extends SelectionOptions, GatewayMetricsOptions {
  /** Where to accept HTTP requests: `"host:port"` (port 0: any free port). */
  listen: string | Address;
  /**
   * Where requests go without a route for their Env-Id: usually the service's picop-proxy, which
   * routes by the header. Every connection starts with the PiCoP header of its environment.
   */
  upstream?: string | Address;
  /** Env-Id -> destination, for environments whose instance the gateway reaches directly. */
  routes?: Record<string, string | Address>;
  /**
   * Most environments with a connection pool at once; past it the least recently used idle one
   * is closed. The baseline's pool is not counted: it is never evicted or refused.
   * @default 64
   */
  maxPools?: number;
  /**
   * Most requests (and upgraded connections) of one environment at once; past it that
   * environment's requests get a 503 (`ERR_PICOP_ENV_BUSY`), and no other's. The baseline's are
   * not capped.
   * @default 256
   */
  maxEnvRequests?: number;
  /** Most connections per environment and destination. @default unlimited */
  connections?: number;
  /**
   * Time allowed for the upstream's response headers, and between two chunks of its body, in ms.
   * @default 60000
   */
  timeoutMs?: number;
  /**
   * A response header naming the Env-Id each request was forwarded in (empty for the baseline),
   * to see which environment served it; the upstream's own header of that name wins.
   * @default none
   */
  responseHeader?: string;
  /** @default none */
  logger?: GatewayLogger;
}

/**
 * Writes an upstream response to the client's `res` as it arrives (undici's dispatch handler),
 * pausing the upstream while `res` is full.
 */
class ResponseRelay implements Dispatcher.DispatchHandler {
  outcome = 'forwarded';
  #controller: Dispatcher.DispatchController | undefined;
  #aborted = false;

  constructor(
    private readonly res: http.ServerResponse,
    private readonly fail: (err: Error) => void,
    private readonly onResponse?: (statusCode: number, headers: http.IncomingHttpHeaders) => void,
  ) {}

  /** The client went away: stop the upstream request. */
  abort(): void {
    this.#aborted = true;
    if (this.outcome === 'forwarded') this.outcome = 'client_closed';
    this.#controller?.abort(new Error('The client closed the connection'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#aborted) controller.abort(new Error('The client closed the connection'));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: http.IncomingHttpHeaders,
  ): void {
    // 1xx: Node's server answers `Expect: 100-continue` itself.
    if (statusCode >= 200) this.res.writeHead(statusCode, responseHeaders(headers));
    this.onResponse?.(statusCode, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (!this.#aborted) this.fail(err);
  }
}

/** The answer to a request target that is neither origin- nor a usable absolute-form. */
function badTarget(req: http.IncomingMessage): Resolved {
  return {
    failed: {
      status: 400,
      code: 'ERR_PICOP_BAD_REQUEST',
      message: `Bad request target ${JSON.stringify(req.url)}`,
    },
    outcome: 'invalid',
  };
}

interface Target {
  dispatcher: Dispatcher;
  origin: string;
}

type Resolved =
  | { envId: string | undefined; target: Target }
  | { failed: { status: number; code: string; message: string }; outcome: string };

/**
 * The request's target in origin form (`/path?query`). An absolute-form target
 * (`GET http://host/path`) names the host itself: RFC 9112, 3.2.2, says to use it and ignore
 * `Host`, so `Host` is set from it before anything reads it. `undefined`: a target that cannot be.
 */
function originForm(req: http.IncomingMessage): string | undefined {
  const target = req.url ?? '/';
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return target;
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.host === '') return undefined;
  req.headers.host = url.host;
  return `${url.pathname}${url.search}`;
}

/** The JSON body of every answer the gateway gives itself: `{"error":{"code","message"}}`. */
function reply(res: http.ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function responseHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const hopByHop = hopByHopOf(headers);
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  }
  return out;
}

/** The status and code the client gets when the upstream fails. */
function upstreamFailure(err: Error & { code?: string }): [number, string] {
  if (err.code === 'ERR_PICOP_TOO_MANY_CONTEXTS') return [503, err.code];
  if (
    err.code === 'UND_ERR_HEADERS_TIMEOUT' ||
    err.code === 'UND_ERR_BODY_TIMEOUT' ||
    err.code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return [504, 'ERR_PICOP_UPSTREAM_TIMEOUT'];
  }
  return [502, 'ERR_PICOP_UPSTREAM'];
}

/**
 * The edge of a PiCoP system: an HTTP/1.1 reverse proxy for requests from outside (curl, browsers,
 * an ingress) that cannot write a PiCoP header. It reads each request's Env-Id from a header, the
 * W3C baggage, a cookie or the host name, checks it (one Env-Id rule; allow-list; optional secret),
 * and forwards the request over a per-environment keep-alive pool whose connections start with
 * the PiCoP header. Created by {@link createGateway}.
 */
export class PicopGateway {
  /** The HTTP server; listening after {@link listen}. */
  readonly server: http.Server;
  /** Routes by Env-Id; requests without one go to `upstream` (the default route). */
  readonly routes: RouteTable;
  /** The gateway's Prometheus metrics. */
  readonly metrics: GatewayMetrics;
  readonly #listen: Address;
  readonly #selector: EnvIdSelector;
  readonly #envIdHeader: string;
  readonly #responseHeader: string | undefined;
  readonly #dispatcher: PicopDispatcher;
  readonly #logger: GatewayLogger | undefined;
  readonly #upgraded = new Set<Duplex>();
  #inFlight = 0;
  readonly #maxEnvRequests: number;
  readonly #inFlightByEnv = new Map<string, number>();
  // Upstreams already reported as not reading PiCoP.
  readonly #notPicop = new Set<string>();
  #closing: (() => void) | undefined;

  constructor(options: GatewayOptions) {
    this.#listen = parseAddress(options.listen, 'listen', { allowPortZero: true });
    this.routes = new RouteTable(options.routes, options.upstream);
    if (this.routes.default === undefined && this.routes.size === 0) {
      throw new PicopError('ERR_PICOP_INVALID_ARG', 'The gateway needs an upstream or routes');
    }
    this.#selector = new EnvIdSelector(options);
    this.#envIdHeader = (options.header ?? DEFAULTS.header).toLowerCase();
    this.#responseHeader = options.responseHeader;
    if (options.responseHeader !== undefined) {
      try {
        http.validateHeaderName(options.responseHeader);
      } catch {
        throw new PicopError(
          'ERR_PICOP_INVALID_ARG',
          `responseHeader ${JSON.stringify(options.responseHeader)} is not an HTTP header name`,
        );
      }
    }
    const timeout = options.timeoutMs ?? DEFAULTS.timeoutMs;
    this.#maxEnvRequests = options.maxEnvRequests ?? DEFAULTS.maxEnvRequests;
    this.#dispatcher = new PicopDispatcher({
      connections: options.connections,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      // Every destination of the gateway (its upstream, its routes) speaks PiCoP.
      // Work without an Env-Id is the baseline's, whatever PICOP_ENV_ID says.
      picop: { maxPools: options.maxPools ?? DEFAULTS.maxPools, envId: null, origins: '*' },
    });
    this.#logger = options.logger;
    this.metrics = new GatewayMetrics(options, () => this.#dispatcher.pools.size);
    this.server = http.createServer((req, res) => this.#forward(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
    this.server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      if (err.code !== 'ECONNRESET' && socket.writable) {
        socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      } else socket.destroy();
    });
  }

  /** Whether a request must prove a secret to leave the baseline. */
  get guarded(): boolean {
    return this.#selector.guarded;
  }

  /** Starts accepting requests; resolves with the address (the real port for port 0). */
  async listen(): Promise<Address> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.#listen.port, this.#listen.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as net.AddressInfo;
    return { host: address.address, port: address.port };
  }

  /**
   * Stops accepting, lets the requests in flight finish (closing each connection as it goes
   * idle), and after `graceMs` closes whatever is left, WebSockets included.
   */
  async close(graceMs = 10_000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const drained = new Promise<void>((resolve) => {
      this.#closing = resolve;
      if (this.#inFlight === 0 && this.#upgraded.size === 0) resolve();
    });
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([drained, grace]);
    clearTimeout(timer);
    this.server.closeAllConnections();
    for (const socket of this.#upgraded) socket.destroy();
    await closed;
    await this.#dispatcher.close();
  }

  /**
   * Where a request goes: its Env-Id (after the checks) and that environment's dispatcher and
   * origin; or the answer the gateway gives itself (an invalid Env-Id, no route, all pools busy).
   */
  #resolve(req: http.IncomingMessage): Resolved {
    const selection = this.#selector.select(req.headers);
    if (selection.kind === 'invalid') {
      return {
        failed: { status: 400, code: selection.code, message: selection.message },
        outcome: 'invalid',
      };
    }
    if (selection.kind === 'refused') {
      this.metrics.refused.inc({ reason: selection.reason });
      this.#logger?.debug(
        { envId: selection.asked, reason: selection.reason },
        'Env-Id refused: served by the baseline',
      );
    }
    const envId = selection.kind === 'forward' ? selection.envId : undefined;
    if (envId !== undefined && (this.#inFlightByEnv.get(envId) ?? 0) >= this.#maxEnvRequests) {
      const message = `Env-Id ${envId} has ${this.#maxEnvRequests} requests in flight (--max-env-requests)`;
      return { failed: { status: 503, code: 'ERR_PICOP_ENV_BUSY', message }, outcome: 'env_busy' };
    }
    try {
      const target = this.#target(envId);
      if (target !== undefined) return { envId, target };
      const message = `No route for Env-Id ${envId ?? '(none)'}`;
      return { failed: { status: 502, code: 'ERR_PICOP_NO_ROUTE', message }, outcome: 'no_route' };
    } catch (err) {
      // All the pools are busy (ERR_PICOP_TOO_MANY_CONTEXTS).
      const [status, code] = upstreamFailure(err as Error);
      return {
        failed: { status, code, message: (err as Error).message },
        outcome: 'upstream_error',
      };
    }
  }

  /**
   * An HTTP server that does not read PiCoP takes the header for a bad request line and answers
   * Node's bare `400` (`connection: close`, no body): said once per upstream, with the fix.
   */
  #checkPicopUpstream(origin: string, statusCode: number, headers: http.IncomingHttpHeaders): void {
    if (statusCode !== 400 || this.#notPicop.has(origin)) return;
    const bare =
      String(headers.connection).toLowerCase() === 'close' &&
      headers['content-type'] === undefined &&
      (headers['content-length'] === undefined || headers['content-length'] === '0');
    if (!bare) return;
    this.#notPicop.add(origin);
    this.#logger?.warn(
      { upstream: origin },
      `upstream ${origin} answered a bare 400, as an HTTP server that does not read PiCoP answers the header: point --upstream at its picop-proxy, or read the header in the service (acceptPicop from @picop/net-wrap)`,
    );
  }

  /** Counts a request of `envId` in flight until the returned function is called. */
  #hold(envId: string | undefined): () => void {
    if (envId === undefined) return () => {};
    this.#inFlightByEnv.set(envId, (this.#inFlightByEnv.get(envId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inFlightByEnv.get(envId) ?? 1) - 1;
      if (left === 0) this.#inFlightByEnv.delete(envId);
      else this.#inFlightByEnv.set(envId, left);
    };
  }

  /** The dispatcher and origin of an environment (`undefined`: the baseline). */
  #target(envId: string | undefined): Target | undefined {
    const destination =
      (envId === undefined ? undefined : this.routes.get(envId)) ?? this.routes.default;
    if (destination === undefined) return undefined;
    const ctx = envId === undefined ? ROOT_CONTEXT : setEnvId(ROOT_CONTEXT, envId);
    return {
      dispatcher: this.#dispatcher.forContext(ctx),
      origin: `http://${formatAddress(destination)}`,
    };
  }

  #headers(req: http.IncomingMessage, envId: string | undefined) {
    return forwardedHeaders(req.headers, envId, this.#envIdHeader, {
      address: req.socket.remoteAddress,
      encrypted: false,
    });
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    const path = originForm(req);
    const resolved = path === undefined ? badTarget(req) : this.#resolve(req);
    if ('failed' in resolved) {
      this.metrics.requests.inc({ outcome: resolved.outcome });
      const { status, code, message } = resolved.failed;
      reply(res, status, code, message);
      req.resume();
      return;
    }
    const { envId, target } = resolved;
    const { origin } = target;
    this.#inFlight++;
    const release = this.#hold(envId);
    const relay = new ResponseRelay(
      res,
      (err) => {
        relay.outcome = 'upstream_error';
        this.#logger?.warn({ envId, err: err.message, url: req.url }, 'upstream failed');
        reply(res, ...upstreamFailure(err), `Upstream ${origin}: ${err.message}`);
      },
      (statusCode, headers) => this.#checkPicopUpstream(origin, statusCode, headers),
    );
    res.on('close', () => {
      release();
      if (!res.writableFinished) relay.abort();
      this.metrics.requests.inc({ outcome: relay.outcome });
      this.metrics.duration.observe(
        { outcome: relay.outcome },
        (performance.now() - started) / 1000,
      );
      this.#inFlight--;
      if (this.#closing !== undefined) {
        this.server.closeIdleConnections();
        if (this.#inFlight === 0 && this.#upgraded.size === 0) this.#closing();
      }
    });
    if (this.#closing !== undefined) res.setHeader('connection', 'close');
    if (this.#responseHeader !== undefined) res.setHeader(this.#responseHeader, envId ?? '');
    const hasBody =
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    target.dispatcher.dispatch(
      {
        origin,
        path: path as string,
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        headers: this.#headers(req, envId),
        body: hasBody ? req : null,
      },
      relay,
    );
  }

  #upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const fail = (status: number, code: string, message: string) => {
      const body = JSON.stringify({ error: { code, message } });
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    };
    const path = originForm(req);
    const resolved = path === undefined ? badTarget(req) : this.#resolve(req);
    if ('failed' in resolved) {
      this.metrics.requests.inc({ outcome: resolved.outcome });
      fail(resolved.failed.status, resolved.failed.code, resolved.failed.message);
      return;
    }
    const protocol = String(req.headers.upgrade ?? 'websocket');
    const { envId, target } = resolved;
    this.#upgraded.add(socket);
    const release = this.#hold(envId);
    socket.on('close', () => {
      release();
      this.#upgraded.delete(socket);
      if (this.#closing !== undefined && this.#inFlight === 0 && this.#upgraded.size === 0) {
        this.#closing();
      }
    });
    const options: Dispatcher.UpgradeOptions & { origin: string } = {
      origin: target.origin,
      path: path as string,
      method: req.method ?? 'GET',
      headers: this.#headers(req, envId),
      protocol,
    };
    target.dispatcher.upgrade(options, (err, data) => {
      if (err !== null) {
        this.metrics.requests.inc({ outcome: 'upstream_error' });
        fail(...upstreamFailure(err), `Upstream ${target.origin}: ${err.message}`);
        return;
      }
      const upstream = data.socket;
      // A 101 to a protocol the client did not ask for is not relayed: its bytes would be read
      // as something else.
      const agreed = String(data.headers.upgrade ?? '').toLowerCase();
      if (agreed !== protocol.toLowerCase()) {
        upstream.destroy();
        this.metrics.requests.inc({ outcome: 'upstream_error' });
        fail(
          502,
          'ERR_PICOP_UPSTREAM',
          `Upstream ${target.origin} switched to ${JSON.stringify(agreed)}, not the ${JSON.stringify(protocol)} asked for`,
        );
        return;
      }
      this.metrics.requests.inc({ outcome: 'upgraded' });
      const lines = [`HTTP/1.1 101 Switching Protocols`];
      for (const [name, value] of Object.entries(data.headers)) {
        for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
      }
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.on('error', () => socket.destroy());
      upstream.on('close', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
  }
}

/**
 * An edge gateway: see {@link PicopGateway}.
 *
 * @example
 * const gateway = createGateway({ listen: '0.0.0.0:8080', upstream: 'svc-a-proxy:9000',
 *   allow: ['feature-*'] });
 * await gateway.listen();
 */
export function createGateway(options: GatewayOptions): PicopGateway {
  return new PicopGateway(options);
}
