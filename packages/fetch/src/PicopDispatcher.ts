import { EventEmitter } from 'node:events';
import net from 'node:net';
import type tls from 'node:tls';
import { type Context, context, diag } from '@opentelemetry/api';
import { ContextPools, connect, connectTls, type PicopWrapperOptions } from '@picop/net-wrap';
import { refuseDirect, splitOptions } from '@picop/net-wrap/internal';
import { OriginRoutes, type Route, type Routes, type RoutesOptions } from '@picop/routes';
import { Agent, type buildConnector, Dispatcher, errors } from 'undici';

/** The `picop` options of {@link createDispatcher}. */
export interface PicopDispatcherPicopOptions
  extends Omit<PicopWrapperOptions, 'routes' | 'isolate'> {
  /**
   * Most environments with a pool at once; past it the least recently used idle pool is closed.
   * @default 32
   */
  maxPools?: number;
  /**
   * Proxyless routing, per service: for requests to an origin listed here
   * (`'http://orders:8080'`), each environment's connections go straight to its route's
   * destination (no header unless the route says so); environments without a route go to the
   * URL's own host. Requests to other origins are unchanged. See `@picop/routes`.
   */
  routes?: Record<string, RoutesOptions>;
}

/** Options of {@link createDispatcher}: undici's `Agent` options, plus `picop`. */
export interface PicopDispatcherOptions extends Omit<Agent.Options, 'connect' | 'factory'> {
  /**
   * TLS and socket options of every new connection (as undici's `connect` object), and `timeout`,
   * the time allowed to connect in ms.
   * @default { timeout: 10000 }
   */
  connect?: tls.ConnectionOptions & { timeout?: number };
  /** `false` (or `PICOP_DISABLED=1`): a plain undici `Agent`, no header. */
  picop?: PicopDispatcherPicopOptions | false;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Where one environment's connection to an origin goes: the URL's host, or a route's. */
type Destination = (origin: string) => Route | undefined;

/**
 * An undici connector whose sockets start with `header`: in clear before TLS for `https:`.
 * The callback gets the socket once it is connected (TLS: once the handshake is done). With
 * `destination`, a routed origin's connections go to its route (TLS still names the URL's host).
 */
function picopConnector(
  header: Buffer,
  options: PicopDispatcherOptions['connect'] = {},
  destination?: Destination,
): buildConnector.connector {
  const { timeout = DEFAULT_CONNECT_TIMEOUT_MS, ...tlsOptions } = options;
  return ({ hostname, protocol, port, servername, localAddress }, callback) => {
    const secure = protocol === 'https:';
    // undici passes IPv6 literals in brackets.
    const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    const urlPort = Number(port) || (secure ? 443 : 80);
    let routed: ReturnType<Destination>;
    try {
      routed = destination?.(`${protocol}//${hostname}:${urlPort}`);
    } catch (err) {
      callback(err as Error, null);
      return;
    }
    const address = {
      host: routed?.host ?? host,
      port: routed?.port ?? urlPort,
      localAddress: localAddress ?? undefined,
      header: routed === undefined || routed.header ? header : Buffer.alloc(0),
    };
    const socket = secure
      ? connectTls({
          ...tlsOptions,
          ...address,
          servername: servername || tlsOptions.servername || (net.isIP(host) ? undefined : host),
          ALPNProtocols: ['http/1.1'],
        })
      : connect(address);
    const timer = setTimeout(() => {
      socket.destroy(
        new errors.ConnectTimeoutError(
          `Connect Timeout Error (${host}:${address.port}, ${timeout} ms)`,
        ),
      );
    }, timeout);
    const onError = (err: Error) => {
      clearTimeout(timer);
      callback(err, null);
    };
    socket.once('error', onError);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      callback(null, socket);
    });
  };
}

function isIdle(agent: Agent): boolean {
  for (const stats of Object.values(agent.stats)) {
    if (stats.running > 0 || stats.pending > 0) return false;
  }
  return true;
}

const EVENTS = ['connect', 'disconnect', 'connectionError', 'drain'] as const;

/**
 * An undici `Dispatcher` that keeps one keep-alive `Agent` per context (per Env-Id), each
 * connection of which starts with that context's PiCoP header. Two environments never share a
 * connection. Created by {@link createDispatcher}.
 */
export class PicopDispatcher extends Dispatcher {
  readonly #pools: ContextPools<Agent>;
  readonly #routes: OriginRoutes;

  constructor(options: PicopDispatcherOptions = {}) {
    super();
    const { picop, library } = splitOptions<PicopDispatcherPicopOptions, PicopDispatcherOptions>(
      options,
    );
    const { connect: connectOptions, ...agentOptions } = library;
    const { maxPools, routes, ...poolOptions } = picop;
    refuseDirect(picop as PicopWrapperOptions, '@picop/fetch', ['isolate']);
    this.#routes = new OriginRoutes(routes);
    // A change closes every environment's pool once its requests are done; the next request
    // opens a new one, at the new destination.
    this.#routes.on('change', () => void this.#pools.clear());
    this.#routes.on('error', (err) =>
      diag.warn(`@picop/fetch: routes kept as they were: ${err.message}`),
    );
    this.#pools = new ContextPools<Agent>({
      ...poolOptions,
      max: maxPools,
      create: ({ header, envId }) => {
        const destination: Destination | undefined =
          this.#routes.size === 0 ? undefined : (origin) => this.#routes.destination(origin, envId);
        const agent = new Agent({
          ...agentOptions,
          connect: picopConnector(header, connectOptions, destination),
        });
        // Its events are ours (undici's typed overloads take one event name at a time).
        for (const event of EVENTS) {
          EventEmitter.prototype.on.call(agent, event, (...args: unknown[]) =>
            EventEmitter.prototype.emit.call(this, event, ...args),
          );
        }
        return agent;
      },
      destroy: (agent) => (agent.destroyed ? undefined : agent.close()),
      isIdle,
    });
  }

  /** The routes of a routed origin (`picop.routes`): `failures` counts reloads that failed. */
  routesOf(origin: string): Routes | undefined {
    return this.#routes.of(origin);
  }

  /** Number of environments with a pool now. */
  get size(): number {
    return this.#pools.size;
  }

  /**
   * The dispatcher of one context's environment: for code that holds a context instead of running
   * in it (a gateway that reads the Env-Id from each request).
   */
  forContext(ctx: Context): Dispatcher {
    return this.#pools.acquire(ctx);
  }

  override dispatch(
    options: Dispatcher.DispatchOptions,
    handler: Dispatcher.DispatchHandler,
  ): boolean {
    return this.#pools.acquire(context.active()).dispatch(options, handler);
  }

  /** Waits for the requests in flight, then closes every connection. */
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#routes.close();
    const closed = this.#pools.close();
    if (callback === undefined) return closed;
    closed.then(callback);
  }

  /** Closes every connection now; requests in flight fail with `err`. */
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(callback: () => void): void;
  override destroy(err?: Error | null): Promise<void>;
  override destroy(
    errOrCallback?: Error | null | (() => void),
    callback?: () => void,
  ): Promise<void> | void {
    const err = typeof errOrCallback === 'function' ? null : (errOrCallback ?? null);
    const done = typeof errOrCallback === 'function' ? errOrCallback : callback;
    const destroyed = Promise.all(
      [...this.#pools.values()].map((agent) => agent.destroy(err)),
    ).then(() => this.#pools.close());
    if (done === undefined) return destroyed;
    destroyed.then(done);
  }
}

/**
 * A `Dispatcher` for `fetch` and undici whose connections carry the PiCoP header of the context
 * each request is made in: one keep-alive pool per Env-Id (at most `picop.maxPools`, idle ones
 * closed after `picop.idleTimeoutMs`), TLS after the header for `https:`. With `picop: false` (or
 * `PICOP_DISABLED=1`) it returns a plain undici `Agent`.
 *
 * @example
 * import { setGlobalDispatcher } from 'undici';
 * setGlobalDispatcher(createDispatcher()); // every fetch() now carries its Env-Id
 */
export function createDispatcher(options: PicopDispatcherOptions = {}): Dispatcher {
  const { enabled, library } = splitOptions(options);
  if (!enabled) {
    const { connect: connectOptions, ...agentOptions } = library;
    return new Agent({ ...agentOptions, connect: connectOptions });
  }
  return new PicopDispatcher(options);
}
