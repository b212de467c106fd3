import net from 'node:net';
import { type Dialect, encodeHeader, isPicopError, type PicopFields } from '@picop/codec';
import { readHeader } from '@picop/net-wrap';
import type { Logger } from 'pino';
import { type Address, formatAddress, parseAddress } from './address.js';
import { ProxyStats } from './ProxyStats.js';
import { RouteTable } from './RouteTable.js';

/** Options of {@link createProxy}. */
export interface ProxyOptions {
  /** Where to accept connections (`"host:port"`; port 0 picks a free one). */
  listen: string | Address;
  /** Route for connections without a header, without Env-Id, or with an Env-Id without a route. */
  defaultRoute?: string | Address;
  /** `{ envId: "host:port" }`. */
  routes?: Record<string, string | Address>;
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
  /** A pino logger. Per connection lines at debug, failures at info. @default none */
  logger?: Logger;
}

/** Numbers of {@link PicopProxy.stats}. */
export type ProxyStatsSnapshot = ReturnType<ProxyStats['totals']> & {
  byEnv: Record<string, ReturnType<ProxyStats['label']>>;
};

interface Relay {
  client: net.Socket;
  destination?: net.Socket;
}

/**
 * A PiCoP proxy: reads the header of each connection, and relays the connection to the route of
 * its Env-Id, or to the default route. See {@link createProxy}.
 */
export class PicopProxy {
  /** The route table; changes apply to new connections. */
  readonly routes: RouteTable;
  readonly #options: ProxyOptions;
  readonly #listenAddress: Address;
  readonly #server: net.Server;
  readonly #stats = new ProxyStats();
  readonly #relays = new Set<Relay>();
  readonly #log: Logger | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: ProxyOptions) {
    this.#options = options;
    this.#listenAddress = parseAddress(options.listen, '`listen`', { allowPortZero: true });
    this.routes = new RouteTable(options.routes, options.defaultRoute);
    this.#log = options.logger;
    this.#server = net.createServer(
      { allowHalfOpen: true, noDelay: true, pauseOnConnect: false },
      (socket) => this.#accept(socket),
    );
  }

  /** Starts accepting; resolves with the address bound (useful with port 0). */
  listen(): Promise<Address> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#listenAddress.port, this.#listenAddress.host, () => {
        this.#server.off('error', reject);
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

  /** Prometheus text of the counters. */
  metrics(): string {
    return this.#stats.toPrometheus();
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
      const done = () => {
        if (this.#relays.size === 0) {
          clearTimeout(timer);
          clearInterval(poll);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        for (const relay of this.#relays) {
          relay.client.destroy();
          relay.destination?.destroy();
        }
      }, graceMs);
      const poll = setInterval(done, 20);
      done();
    });
    return this.#closing;
  }

  #accept(client: net.Socket): void {
    const relay: Relay = { client };
    this.#relays.add(relay);
    client.on('close', () => {
      if (relay.destination === undefined || relay.destination.destroyed)
        this.#relays.delete(relay);
    });
    const started = performance.now();
    const o = this.#options;
    readHeader(client, {
      mode: o.header ?? 'required',
      timeoutMs: o.headerTimeoutMs,
      maxLength: o.maxHeaderBytes,
      dialect: o.dialect,
    }).then(
      (fields) => {
        this.#stats.observeHeader((performance.now() - started) / 1000);
        this.#route(relay, fields, started);
      },
      (err: unknown) => {
        const reason = isPicopError(err)
          ? err.code.slice('ERR_PICOP_'.length).toLowerCase()
          : 'client_error';
        this.#stats.label('_unknown').accepted++;
        this.#stats.fail('_unknown', reason);
        this.#log?.info(
          { peer: peer(client), reason, err: (err as Error).message },
          'header refused',
        );
        this.#relays.delete(relay);
      },
    );
  }

  #route(relay: Relay, fields: PicopFields | undefined, started: number): void {
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
      this.#relays.delete(relay);
      return;
    }
    stats.active++;
    let toDestination = 0;
    let toClient = 0;
    // Destination -> client: read into one shared buffer (reads run one at a time on the event
    // loop) and write a copy, skipping a buffer allocation and a stream event per chunk.
    const destination = net.connect({
      host: target.host,
      port: target.port,
      noDelay: true,
      allowHalfOpen: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array) => {
          toClient += n;
          return client.write(Buffer.from(buf.subarray(0, n)));
        },
      },
    });
    client.on('drain', () => destination.resume());
    destination.on('end', () => client.end());
    relay.destination = destination;
    if (this.#options.propagate && fields !== undefined) {
      destination.write(encodeHeader(fields, { dialect: this.#options.dialect }));
    }
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

    pump(client, destination, (n) => {
      toDestination += n;
    });

    let open = 2;
    const closed = () => {
      if (--open > 0) return;
      clearTimeout(connectTimer);
      stats.active--;
      stats.bytesToDestination += toDestination;
      stats.bytesToClient += toClient;
      if (failure !== undefined) this.#stats.fail(label, failure);
      this.#relays.delete(relay);
      this.#log?.debug(
        {
          envId,
          destination: formatAddress(target),
          toDestination,
          toClient,
          ms: Math.round(performance.now() - started),
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
  }
}

/**
 * Relays `from` to `to` with backpressure, and `from`'s FIN as `to`'s (the other direction goes on).
 * Bytes already buffered in `from` (read past the header) come first.
 */
function pump(from: net.Socket, to: net.Socket, count: (n: number) => void): void {
  from.on('data', (chunk: Buffer) => {
    count(chunk.length);
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
}

const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

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
