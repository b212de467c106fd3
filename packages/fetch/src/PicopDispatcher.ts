import { EventEmitter } from 'node:events';
import net from 'node:net';
import type tls from 'node:tls';
import { type Context, context, diag } from '@opentelemetry/api';
import { ContextPools, connect, connectTls, type PicopPools } from '@picop/net-wrap';
import {
  checkBounds,
  coverLibrary,
  fallbackEnvId,
  inRouted,
  type PicopWrapperOptions,
  picopOrigins,
  refuseDirect,
  splitOptions,
} from '@picop/net-wrap/internal';
import { OriginRoutes, type Route, type Routes, type RoutesOptions } from '@picop/routes';
import { Agent, type buildConnector, Dispatcher, errors } from 'undici';
import { checkUndici } from './undici-check.js';

/** The `picop` options of {@link createDispatcher}. */
export interface PicopDispatcherPicopOptions
  extends Omit<PicopWrapperOptions, 'routes' | 'isolate'> {
  /**
   * The hosts that speak PiCoP (picop-proxies, `acceptPicop` services): patterns such as
   * `'*.svc.cluster.local'`, `'orders:8080'`, `'https://payments:*'`. Requests to them go over
   * their environment's pool, each connection starting with its header; requests to any other
   * host go over one plain keep-alive `Agent`, exactly as without PiCoP. Required unless
   * `PICOP_ORIGINS` is set or `routes` lists every origin to reach.
   * @default process.env.PICOP_ORIGINS
   */
  origins?: string | readonly string[];
  /**
   * Proxyless routing, per service: for requests to an origin listed here
   * (`'http://orders:8080'`), each environment's connections go straight to its route's
   * destination (no header unless the route says so); environments without a route go to the
   * URL's own host. See `@picop/routes`.
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

// PicopGuard's start-up check: undici is routed in this process.
coverLibrary('undici');

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

/** Re-emits an agent's events on `target` (undici's typed overloads take one name at a time). */
function forwardAgentEvents(agent: Agent, target: Dispatcher): void {
  for (const event of EVENTS) {
    EventEmitter.prototype.on.call(agent, event, (...args: unknown[]) =>
      EventEmitter.prototype.emit.call(target, event, ...args),
    );
  }
}

/**
 * An undici `Dispatcher` for requests to PiCoP origins (`picop.origins`, `picop.routes`), one
 * keep-alive `Agent` per context (per Env-Id), each connection of which starts with that
 * context's PiCoP header: two environments never share a connection. Requests to other origins go
 * over one plain `Agent`. Created by {@link createDispatcher}.
 */
export class PicopDispatcher extends Dispatcher {
  readonly #pools: ContextPools<Agent>;
  readonly #routes: OriginRoutes;
  readonly #plain: Agent;

  constructor(options: PicopDispatcherOptions = {}) {
    super();
    const { picop, library } = splitOptions<PicopDispatcherPicopOptions, PicopDispatcherOptions>(
      options,
    );
    checkUndici();
    const { connect: connectOptions, ...agentOptions } = library;
    const { maxPools, routes, origins, ...poolOptions } = picop;
    refuseDirect(picop as PicopWrapperOptions, '@picop/fetch', ['isolate']);
    // Checked before anything is made: a bad option leaves no watcher or agent behind.
    checkBounds(maxPools, poolOptions.idleTimeoutMs);
    fallbackEnvId(poolOptions.envId);
    this.#routes = new OriginRoutes(
      routes,
      picopOrigins(origins, routes, 'The dispatcher of @picop/fetch', 'picop.origins'),
    );
    this.#plain = new Agent({ ...agentOptions, connect: connectOptions });
    forwardAgentEvents(this.#plain, this);
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
        forwardAgentEvents(agent, this);
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

  /**
   * The environments' undici `Agent`s: counters `size`, `created`, `evicted`, `expired`, and
   * `byEnvId()` (their routes: {@link routesOf}).
   */
  get pools(): PicopPools<Agent> {
    return this.#pools;
  }

  /** @deprecated since 0.2.0, removed in 0.3.0: `pools.size`. */
  get size(): number {
    return this.#pools.size;
  }

  /**
   * The dispatcher of one context's environment, for code that holds a context instead of running
   * in it (a gateway that reads the Env-Id from each request). Every request through it carries
   * the header, whatever its origin: use it for PiCoP origins only.
   */
  forContext(ctx: Context): Dispatcher {
    return this.#pools.acquire(ctx);
  }

  override dispatch(
    options: Dispatcher.DispatchOptions,
    handler: Dispatcher.DispatchHandler,
  ): boolean {
    const { origin } = options;
    // Routed either way (a non-PiCoP origin on purpose): undici's instrumentation starts its
    // span in the dispatch.
    const target =
      origin !== undefined && !this.#routes.speaksPicop(String(origin))
        ? this.#plain
        : this.#pools.acquire(context.active());
    return inRouted(target.dispatch, target, options, handler);
  }

  /** Waits for the requests in flight, then closes every connection. */
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#routes.close();
    const closed = Promise.all([this.#pools.close(), this.#plain.close()]).then(() => {});
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
    this.#routes.close();
    const destroyed = Promise.all(
      [...this.#pools.values(), this.#plain].map((agent) => agent.destroy(err)),
    ).then(() => this.#pools.close());
    if (done === undefined) return destroyed;
    destroyed.then(done);
  }
}

/**
 * A `Dispatcher` for `fetch` and undici whose connections to PiCoP origins (`picop.origins`)
 * carry the PiCoP header of the context each request is made in: one keep-alive pool per Env-Id
 * (at most `picop.maxPools`, idle ones closed after `picop.idleTimeoutMs`), TLS after the header
 * for `https:`. Requests to every other host go out plain. With `picop: false` (or
 * `PICOP_DISABLED=1`) it returns a plain undici `Agent`.
 *
 * @example
 * import { setGlobalDispatcher } from 'undici';
 * // fetch() to the cluster's services carries its Env-Id; calls to the internet go out plain
 * setGlobalDispatcher(createDispatcher({ picop: { origins: ['*.svc.cluster.local'] } }));
 */
export function createDispatcher(options: PicopDispatcherOptions = {}): Dispatcher {
  const { enabled, library } = splitOptions(options);
  if (!enabled) {
    const { connect: connectOptions, ...agentOptions } = library;
    return new Agent({ ...agentOptions, connect: connectOptions });
  }
  return new PicopDispatcher(options);
}
