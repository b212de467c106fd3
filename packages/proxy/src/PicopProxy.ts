import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { type Dialect, PicopError } from '@picop/codec';
import { type Address, formatAddress, parseAddress, RoutesFile, RouteTable } from '@picop/routes';
import type { Registry } from 'prom-client';
import { Connection } from './connection.js';
import { DEFAULTS } from './defaults.js';
import { ProxyStats } from './ProxyStats.js';

/** What the proxy logs with: pino's logger fits, and so does a small adapter of any other. */
export interface ProxyLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Options of {@link createProxy}. */
export interface ProxyOptions {
  /** Where to accept connections (`"host:port"`; port 0 picks a free one). */
  listen: string | Address;
  /** Route for connections without a header, without Env-Id, or with an Env-Id without a route. */
  defaultRoute?: string | Address;
  /** `{ envId: "host:port" }`. */
  routes?: Record<string, string | Address>;
  /**
   * A JSON file with the routes instead (`{"env": "host:port"}` or `[{"env_id", "destination"}]`),
   * watched: a change, a rename over it or Kubernetes' ConfigMap symlink swap replaces the routes
   * at once; a bad file keeps the last good routes (logged, counted). One file can feed every
   * replica.
   */
  routesFile?: string;
  /**
   * `'optional'`: a connection without PiCoP goes to the default route, byte for byte untouched,
   * so plain clients (`redis-cli`) work through the proxy. Only for protocols whose client speaks first.
   * @default 'required'
   */
  header?: 'required' | 'optional';
  /**
   * Re-send the header to the destination (for services that read it themselves).
   * @default false
   */
  propagate?: boolean;
  /** @default 'spec' */
  dialect?: Dialect;
  /**
   * Header field that holds the Env-Id.
   * @default 'Env-Id'
   */
  fieldName?: string;
  /**
   * Time allowed for a complete header.
   * @default 5000
   */
  headerTimeoutMs?: number;
  /**
   * Longest header context accepted, in bytes.
   * @default 4096
   */
  maxHeaderBytes?: number;
  /**
   * Time allowed to connect to a destination.
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * Close a relayed connection with no byte either way for this long, in ms (0: never, as
   * HAProxy without `timeout client/server`). TCP keep-alive is on for both legs either way, so
   * a peer that vanished is found by the kernel; this also frees connections a client forgot.
   * @default 0
   */
  idleTimeoutMs?: number;
  /** A logger (pino's fits). Per connection lines at debug, failures at info. @default none */
  logger?: ProxyLogger;
  /**
   * Most connections open at once; one more is closed on accept and counted
   * (`max_connections`), as HAProxy's `maxconn`. Counted by the proxy, on either read path
   * (`net.Server`'s own `maxConnections` does not see the fast path's sockets).
   * @default 10000
   */
  maxConnections?: number;
  /**
   * When a route changes (flag reload, routes file, admin API, controller), a relayed connection
   * whose route is no longer its destination is closed once no byte has gone either way for this
   * long, in ms, the destination's the last (a reply delivered, no request pending); its client
   * reconnects and takes the new route. Never cut in the middle of an exchange.
   * @default 100
   */
  rerouteQuietMs?: number;
  /**
   * prom-client registry for the proxy's metrics (`picop_proxy_*`).
   * @default a registry of the proxy's own
   */
  registry?: Registry;
}

/** Numbers of {@link PicopProxy.stats}. */
export type ProxyStatsSnapshot = ReturnType<ProxyStats['totals']> & {
  byEnv: Record<string, ReturnType<ProxyStats['label']>>;
};

/**
 * A PiCoP proxy: reads the header of each connection, and relays the connection to the route of
 * its Env-Id, or to the default route. See {@link createProxy}.
 */
export class PicopProxy {
  /** The route table; changes apply to new connections. */
  readonly routes: RouteTable;
  /** The watched routes file, with `routesFile`: emits `'reload'` and `'error'`. */
  readonly routesFile: RoutesFile | undefined;
  readonly #options: ProxyOptions;
  readonly #listenAddress: Address;
  readonly #server: net.Server;
  readonly #stats: ProxyStats;
  readonly #connections = new Set<Connection>();
  readonly #log: ProxyLogger | undefined;
  // `local>remote` (address:port each) of each connection this proxy opened to a destination: an
  // accepted connection with the same two ends is one of them come back, a routing loop (a route
  // whose name resolves to the proxy itself).
  readonly #outgoing = new Set<string>();
  #closing: Promise<void> | undefined;
  /** Called whenever a connection ends while closing. */
  #onConnectionEnd: (() => void) | undefined;

  constructor(options: ProxyOptions) {
    this.#options = options;
    this.#stats = new ProxyStats(options.registry);
    this.#listenAddress = parseAddress(options.listen, '`listen`', { allowPortZero: true });
    this.routes = new RouteTable(options.routes, options.defaultRoute);
    this.#log = options.logger;
    if (options.routesFile !== undefined) {
      if (options.routes !== undefined && Object.keys(options.routes).length > 0) {
        throw new PicopError('ERR_PICOP_INVALID_ARG', 'Give `routes` or `routesFile`, not both');
      }
      this.routesFile = new RoutesFile(options.routesFile, this.routes);
      this.routesFile.on('reload', (routes) => {
        this.#stats.routesReloads++;
        this.#log?.info({ file: options.routesFile, routes }, 'routes reloaded');
      });
      this.routesFile.on('error', (err) => {
        this.#stats.routesReloadFailures++;
        this.#log?.error({ err: err.message }, 'routes file refused: the last good routes stay');
      });
    }
    this.#server = net.createServer(
      { allowHalfOpen: true, noDelay: true, pauseOnConnect: true },
      (socket) => this.#accept(socket),
    );
    this.routes.check = (destination, what) => this.#refuseSelf(destination, what);
    const quietMs = options.rerouteQuietMs ?? DEFAULTS.rerouteQuietMs;
    this.routes.onChange = () => {
      for (const connection of this.#connections) connection.rerouted(quietMs);
    };
    this.#refuseSelfRoutes();
  }

  /** Starts accepting; resolves with the address bound (useful with port 0). */
  listen(): Promise<Address> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#listenAddress.port, this.#listenAddress.host, () => {
        this.#server.off('error', reject);
        // With port 0 the port is known only now: no route may lead here.
        try {
          this.#refuseSelfRoutes();
        } catch (err) {
          this.#server.close();
          reject(err);
          return;
        }
        // From now on an error of the listener (accept failing with EMFILE) is logged and
        // counted, never thrown: the connections already relayed go on.
        this.#server.on('error', (err: NodeJS.ErrnoException) => {
          this.#stats.fail('_unknown', 'accept_error');
          this.#log?.error({ code: err.code, err: err.message }, 'listener error');
        });
        resolve(this.address as Address);
      });
    });
  }

  /** The address bound, once listening. */
  get address(): Address | undefined {
    const a = this.#server.address();
    return a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  /** Totals and per-Env-Id counters. */
  stats(): ProxyStatsSnapshot {
    return { ...this.#stats.totals(), byEnv: Object.fromEntries(this.#stats.byLabel) };
  }

  /** The prom-client registry holding the proxy's metrics. */
  get registry(): Registry {
    return this.#stats.registry;
  }

  /** Prometheus text of the registry's metrics. */
  metrics(): Promise<string> {
    return this.#stats.registry.metrics();
  }

  /** Connections open now. */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * Stops accepting, lets open connections finish for up to `graceMs`, then destroys the rest.
   * Resolves when every connection is closed.
   */
  close(graceMs = 10_000): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close();
      this.routesFile?.close();
      const timer = setTimeout(() => {
        for (const connection of this.#connections) connection.destroy();
      }, graceMs);
      this.#onConnectionEnd = () => {
        if (this.#connections.size > 0) return;
        clearTimeout(timer);
        resolve();
      };
      this.#onConnectionEnd();
    });
    return this.#closing;
  }

  /** {@link #refuseSelf} for every destination of the table. */
  #refuseSelfRoutes(): void {
    for (const [what, destination] of this.routes.destinations())
      this.#refuseSelf(destination, what);
  }

  /** Throws `ERR_PICOP_INVALID_ARG` for a destination that is this proxy's own address. */
  #refuseSelf(destination: Address, what: string): void {
    const port = this.address?.port ?? this.#listenAddress.port;
    if (destination.port !== port || !isOwnHost(destination.host, this.#listenAddress.host)) return;
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `${what}, ${formatAddress(destination)}, is this proxy's own address: every connection routed there would come back, in a loop`,
    );
  }

  #accept(accepted: net.Socket): void {
    const max = this.#options.maxConnections ?? DEFAULTS.maxConnections;
    if (this.#connections.size >= max) {
      this.#stats.label('_unknown').accepted++;
      this.#stats.fail('_unknown', 'max_connections');
      accepted.destroy();
      return;
    }
    const connection = new Connection(accepted, {
      options: this.#options,
      routes: this.routes,
      stats: this.#stats,
      log: this.#log,
      outgoing: this.#outgoing,
      onEnd: (c) => {
        this.#connections.delete(c);
        this.#onConnectionEnd?.();
      },
    });
    this.#connections.add(connection);
  }
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|::1|0\.0\.0\.0|::)$/i;

/** Whether `host` (a destination's) is where a proxy listening on `listenHost` accepts. */
function isOwnHost(host: string, listenHost: string): boolean {
  const h = host.toLowerCase();
  if (LOOPBACK.test(h) || h === listenHost.toLowerCase()) return true;
  // Listening on every interface: each interface's address leads here.
  if (listenHost !== '' && listenHost !== '0.0.0.0' && listenHost !== '::') return false;
  return Object.values(networkInterfaces()).some((addresses) =>
    (addresses ?? []).some((a) => a.address.toLowerCase() === h),
  );
}

/**
 * Creates a PiCoP proxy. Call `listen()` to start it.
 *
 * @example
 * const proxy = createProxy({
 *   listen: '0.0.0.0:9000',
 *   defaultRoute: '10.0.0.5:3306',
 *   routes: { 'feature-1': '10.0.0.6:3306' },
 * });
 * await proxy.listen();
 * proxy.routes.set('feature-2', '10.0.0.7:3306'); // applies to new connections
 */
export function createProxy(options: ProxyOptions): PicopProxy {
  return new PicopProxy(options);
}
