import net from 'node:net';
import {
  DEFAULT_HEADER_TIMEOUT_MS,
  type Dialect,
  encodeHeader,
  HeaderReader,
  type HeaderReadResult,
  isPicopError,
  PicopError,
} from '@picop/codec';
import type { Registry } from 'prom-client';
import { type Address, formatAddress, parseAddress } from './address.js';
import { type LabelStats, ProxyStats } from './ProxyStats.js';
import { RoutesFile } from './RoutesFile.js';
import { RouteTable } from './RouteTable.js';
import { connectReading, owned, readAccepted } from './read-path.js';

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
   * prom-client registry for the proxy's metrics (`picop_proxy_*`).
   * @default a registry of the proxy's own
   */
  registry?: Registry;
}

/** Numbers of {@link PicopProxy.stats}. */
export type ProxyStatsSnapshot = ReturnType<ProxyStats['totals']> & {
  byEnv: Record<string, ReturnType<ProxyStats['label']>>;
};

/** One accepted connection: reading its header, then relaying. */
interface Relay {
  client: net.Socket;
  /** Until the header is decided. */
  reader: HeaderReader | undefined;
  headerTimer: NodeJS.Timeout | undefined;
  destination: net.Socket | undefined;
  /** The counters of its label, once routed: bytes are counted as they flow. */
  stats: LabelStats | undefined;
  started: number;
  toDestination: number;
  toClient: number;
}

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
  readonly #relays = new Set<Relay>();
  readonly #log: ProxyLogger | undefined;
  #closing: Promise<void> | undefined;
  /** Called whenever a relay ends while closing. */
  #onRelayEnd: (() => void) | undefined;

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
  }

  /** Starts accepting; resolves with the address bound (useful with port 0). */
  listen(): Promise<Address> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#listenAddress.port, this.#listenAddress.host, () => {
        this.#server.off('error', reject);
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
    return this.#relays.size;
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
        for (const relay of this.#relays) {
          relay.client.destroy();
          relay.destination?.destroy();
        }
      }, graceMs);
      this.#onRelayEnd = () => {
        if (this.#relays.size > 0) return;
        clearTimeout(timer);
        resolve();
      };
      this.#onRelayEnd();
    });
    return this.#closing;
  }

  #accept(accepted: net.Socket): void {
    const o = this.#options;
    // Reads start once the relay below exists: the callback runs on a later event-loop turn.
    const client = readAccepted(accepted, (chunk, isOwned) =>
      this.#fromClient(relay, chunk, isOwned),
    );
    const relay: Relay = {
      client,
      reader: new HeaderReader({
        mode: o.header ?? 'required',
        maxLength: o.maxHeaderBytes,
        dialect: o.dialect,
      }),
      headerTimer: undefined,
      destination: undefined,
      stats: undefined,
      started: performance.now(),
      toDestination: 0,
      toClient: 0,
    };
    this.#relays.add(relay);
    client.setKeepAlive(true, KEEP_ALIVE_INITIAL_DELAY_MS);
    const timeoutMs = o.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS;
    relay.headerTimer = setTimeout(() => {
      if (relay.reader) this.#refuse(relay, noHeaderError(relay.reader.bytesRead, timeoutMs));
    }, timeoutMs);
    client.on('end', () => {
      if (relay.destination !== undefined) {
        relay.destination.end();
        return;
      }
      if (relay.reader === undefined) return;
      try {
        // A plain peer that sent nothing: connect it anyway, and pass its end on.
        this.#route(relay, relay.reader.end());
        (relay.destination as net.Socket | undefined)?.end();
      } catch (err) {
        this.#refuse(relay, err);
      }
    });
    client.on('error', () => {});
    client.on('close', () => {
      if (relay.reader !== undefined) {
        this.#refuse(relay, relay.reader.closedError());
      }
    });
  }

  /** Bytes from the client; false pauses reading it until the destination drains. */
  #fromClient(relay: Relay, chunk: Buffer, isOwned: boolean): boolean {
    const { destination, reader } = relay;
    if (destination !== undefined) {
      relay.toDestination += chunk.length;
      (relay.stats as LabelStats).bytesToDestination += chunk.length;
      return destination.write(owned(chunk, isOwned));
    }
    if (reader === undefined) return false;
    try {
      const decided = reader.push(chunk);
      return decided === undefined || this.#route(relay, decided);
    } catch (err) {
      this.#refuse(relay, err);
      return false;
    }
  }

  /** The header was bad, late or cut short: count it and close the client. */
  #refuse(relay: Relay, err: unknown): void {
    relay.reader = undefined;
    clearTimeout(relay.headerTimer);
    const reason = isPicopError(err)
      ? err.code.slice('ERR_PICOP_'.length).toLowerCase()
      : 'client_error';
    this.#stats.label('_unknown').accepted++;
    this.#stats.fail('_unknown', reason);
    this.#log?.info(
      { peer: peer(relay.client), reason, err: (err as Error).message },
      'header refused',
    );
    relay.client.destroy();
    this.#end(relay);
  }

  #end(relay: Relay): void {
    this.#relays.delete(relay);
    this.#onRelayEnd?.();
  }

  /**
   * Connects the client to the route of its Env-Id and sends `rest` on; returns false when the
   * destination wants the client paused.
   */
  #route(relay: Relay, { fields, rest }: HeaderReadResult): boolean {
    relay.reader = undefined;
    clearTimeout(relay.headerTimer);
    this.#stats.observeHeader((performance.now() - relay.started) / 1000);
    const { client } = relay;
    const envId = fields?.get(this.#options.fieldName ?? 'Env-Id');
    const routed = envId === undefined ? undefined : this.routes.get(envId);
    const target = routed ?? this.routes.default;
    // Only Env-Ids with a route become metric labels.
    const label =
      routed !== undefined ? (envId as string) : fields === undefined ? '_plain' : '_default';
    const stats = this.#stats.label(label);
    stats.accepted++;
    if (target === undefined || client.destroyed) {
      this.#stats.fail(label, target === undefined ? 'no_route' : 'client_closed');
      this.#log?.info(
        { peer: peer(client), envId },
        target === undefined ? 'no route' : 'client closed',
      );
      client.destroy();
      this.#end(relay);
      return false;
    }
    // Encoded before the destination is opened: a header this proxy accepted is re-sent within
    // the same limit, or the connection is refused before anything else happens.
    let header: Buffer | undefined;
    if (this.#options.propagate && fields !== undefined) {
      try {
        header = encodeHeader(fields, {
          dialect: this.#options.dialect,
          maxLength: this.#options.maxHeaderBytes,
        });
      } catch (err) {
        this.#refuse(relay, err);
        return false;
      }
    }
    relay.stats = stats;
    stats.active++;
    // Destination -> client through the shared read buffer, like the client's side.
    const destination = connectReading(
      {
        host: target.host,
        port: target.port,
        noDelay: true,
        allowHalfOpen: true,
        keepAlive: true,
        keepAliveInitialDelay: KEEP_ALIVE_INITIAL_DELAY_MS,
      },
      (chunk, isOwned) => {
        relay.toClient += chunk.length;
        stats.bytesToClient += chunk.length;
        return client.write(owned(chunk, isOwned));
      },
    );
    const idleTimeoutMs = this.#options.idleTimeoutMs ?? 0;
    if (idleTimeoutMs > 0) {
      // Any byte either way is activity on both sockets (a read on one, a write on the other).
      const idle = () => {
        failure ??= 'idle_timeout';
        this.#log?.info(
          { envId, destination: formatAddress(target), idleTimeoutMs },
          'idle timeout',
        );
        client.destroy();
        destination.destroy();
      };
      client.setTimeout(idleTimeoutMs, idle);
      destination.setTimeout(idleTimeoutMs, idle);
    }
    relay.destination = destination;
    client.on('drain', () => destination.resume());
    destination.on('drain', () => client.resume());
    destination.on('end', () => client.end());
    const connectTimer = setTimeout(() => {
      destination.destroy(
        Object.assign(new Error(`connect to ${formatAddress(target)} timed out`), {
          code: 'ETIMEDOUT',
        }),
      );
    }, this.#options.connectTimeoutMs ?? 5000);
    let failure: string | undefined;
    let connected = false;
    destination.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
    });
    destination.on('error', (err: NodeJS.ErrnoException) => {
      failure ??= connected
        ? 'destination_error'
        : err.code === 'ETIMEDOUT'
          ? 'connect_timeout'
          : 'connect_error';
      this.#log?.info(
        { envId, destination: formatAddress(target), code: err.code, err: err.message },
        'destination error',
      );
      client.destroy();
    });
    client.on('error', () => {
      failure ??= 'client_error';
      destination.destroy();
    });

    let open = 2;
    const closed = () => {
      if (--open > 0) return;
      clearTimeout(connectTimer);
      stats.active--;
      if (failure !== undefined) this.#stats.fail(label, failure);
      this.#end(relay);
      this.#log?.debug(
        {
          envId,
          destination: formatAddress(target),
          toDestination: relay.toDestination,
          toClient: relay.toClient,
          ms: Math.round(performance.now() - relay.started),
          failure,
        },
        'connection closed',
      );
    };
    destination.on('close', (hadError) => {
      if (hadError || !client.writableEnded) client.destroy();
      closed();
    });
    client.on('close', (hadError) => {
      if (hadError || !destination.writableEnded) destination.destroy();
      closed();
    });

    if (header !== undefined) destination.write(header);
    if (rest.length === 0) return true;
    relay.toDestination += rest.length;
    stats.bytesToDestination += rest.length;
    return destination.write(Buffer.from(rest));
  }
}

/** TCP keep-alive on both legs: the kernel finds a peer that vanished without FIN or RST. */
const KEEP_ALIVE_INITIAL_DELAY_MS = 30_000;

/** What a client that sent no (complete) header is told in the log: the proxy's own option. */
function noHeaderError(bytesRead: number, timeoutMs: number): PicopError {
  return new PicopError(
    'ERR_PICOP_TIMEOUT',
    bytesRead === 0
      ? `No PiCoP header within ${timeoutMs} ms: the client sent nothing. A client whose server speaks first (MySQL) must send the header: is it wrapped by @picop/*? (--header-timeout)`
      : `No complete PiCoP header within ${timeoutMs} ms (${bytesRead} bytes so far): is the client wrapped by @picop/*, or is it slow? (--header-timeout)`,
  );
}

function peer(socket: net.Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
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
