import type net from 'node:net';
import {
  encodeHeader,
  HeaderReader,
  type HeaderReadResult,
  isPicopError,
  PicopError,
} from '@picop/codec';
import type { Address, RouteTable } from '@picop/routes';
import { formatAddress } from '@picop/routes';
import { DEFAULTS } from './defaults.js';
import type { ProxyLogger, ProxyOptions } from './PicopProxy.js';
import type { ProxyStats } from './ProxyStats.js';
import { plainClientOf } from './plain-client.js';
import { readAccepted } from './read-path.js';
import { KEEP_ALIVE_INITIAL_DELAY_MS, Relay } from './relay.js';

/** What a connection needs from its proxy. */
export interface ConnectionContext {
  options: ProxyOptions;
  routes: RouteTable;
  stats: ProxyStats;
  log: ProxyLogger | undefined;
  /** `local>remote` of the proxy's own connections to destinations, to see a loop come back. */
  outgoing: Set<string>;
  /** Called once, when the connection is over (refused, or both sides closed). */
  onEnd(connection: Connection): void;
}

/**
 * One accepted connection: its header phase (read the header within the timeout), its route
 * (the Env-Id's destination, or the default), then its relay.
 */
export class Connection {
  readonly client: net.Socket;
  readonly #c: ConnectionContext;
  readonly #started = performance.now();
  #reader: HeaderReader | undefined;
  #headerTimer: NodeJS.Timeout | undefined;
  #relay: Relay | undefined;
  // Where it was routed (Env-Id, destination); which way bytes last went, and (while a route
  // change waits for quiet) when.
  #envId: string | undefined;
  #target: Address | undefined;
  #lastActivity = 0;
  #lastFromClient = false;
  #retireTimer: NodeJS.Timeout | undefined;
  #firstBytes: Buffer | undefined;

  constructor(accepted: net.Socket, c: ConnectionContext) {
    this.#c = c;
    const o = c.options;
    this.#reader = new HeaderReader({
      mode: o.header ?? DEFAULTS.header,
      // The codec's default, which depends on the dialect (4096; picop-go: 255).
      maxLength: o.maxHeaderBytes,
      dialect: o.dialect,
    });
    // Reads start on a later event-loop turn, once this object is complete.
    this.client = readAccepted(accepted, (chunk, isOwned) =>
      this.#relay !== undefined ? this.#relay.fromClient(chunk, isOwned) : this.#header(chunk),
    );
    const client = this.client;
    client.setKeepAlive(true, KEEP_ALIVE_INITIAL_DELAY_MS);
    const timeoutMs = o.headerTimeoutMs ?? DEFAULTS.headerTimeoutMs;
    this.#headerTimer = setTimeout(() => {
      if (this.#reader) this.#refuse(noHeaderError(this.#reader.bytesRead, timeoutMs));
    }, timeoutMs);
    client.on('end', () => {
      if (this.#relay !== undefined) {
        this.#relay.endFromClient();
        return;
      }
      if (this.#reader === undefined) return;
      try {
        // A plain peer that sent nothing: connect it anyway, and pass its end on.
        this.#route(this.#reader.end());
        (this.#relay as Relay | undefined)?.endFromClient();
      } catch (err) {
        this.#refuse(err);
      }
    });
    client.on('error', () => {});
    client.on('close', () => {
      if (this.#reader !== undefined) this.#refuse(this.#reader.closedError());
    });
  }

  /** Closes both sides now (the end of a drain's grace). */
  destroy(): void {
    clearTimeout(this.#retireTimer);
    this.client.destroy();
    this.#relay?.destroy();
  }

  /**
   * The routes changed: if this connection's route is no longer where it is relayed, it is closed
   * once quiet (no byte either way for `quietMs`, the destination's the last), never in the middle
   * of an exchange; the client reconnects and takes the new route.
   */
  rerouted(quietMs: number): void {
    const relay = this.#relay;
    if (relay === undefined || this.#target === undefined || this.#retireTimer !== undefined) {
      return;
    }
    const { routes } = this.#c;
    const now = (this.#envId === undefined ? undefined : routes.get(this.#envId)) ?? routes.default;
    if (now !== undefined && now.host === this.#target.host && now.port === this.#target.port) {
      return;
    }
    // Quiet is counted from the change: bytes already on their way are given `quietMs` to land.
    this.#lastActivity = performance.now();
    const check = () => {
      const quiet = performance.now() - this.#lastActivity;
      if (quiet >= quietMs && !this.#lastFromClient) {
        this.#c.log?.info(
          { envId: this.#envId, from: formatAddress(this.#target as Address) },
          'route changed: quiet connection closed, its client reconnects to the new route',
        );
        relay.destroy('rerouted');
        return;
      }
      this.#retireTimer = setTimeout(check, Math.max(1, quietMs - quiet));
    };
    check();
  }

  /** A chunk of the header phase; false pauses reading the client. */
  #header(chunk: Buffer): boolean {
    if (this.#reader === undefined) return false;
    if (this.#reader.bytesRead === 0) this.#firstBytes = Buffer.from(chunk.subarray(0, 16));
    try {
      const decided = this.#reader.push(chunk);
      return decided === undefined || this.#route(decided);
    } catch (err) {
      this.#refuse(err);
      return false;
    }
  }

  /** The header was bad, late or cut short: count it and close the client. */
  #refuse(err: unknown): void {
    this.#reader = undefined;
    clearTimeout(this.#headerTimer);
    const reason = isPicopError(err)
      ? err.code.slice('ERR_PICOP_'.length).toLowerCase()
      : 'client_error';
    this.#c.stats.label('_unknown').accepted++;
    this.#c.stats.fail('_unknown', reason);
    const plain =
      reason === 'signature' || reason === 'version'
        ? plainClientOf(this.#firstBytes ?? Buffer.alloc(0))
        : undefined;
    this.#c.log?.info(
      {
        peer: peer(this.client),
        reason,
        err: (err as Error).message,
        ...(plain !== undefined && {
          hint: `this looks like ${plain} without PiCoP: wrap it with @picop/* (or route it through picop-gateway), or start this proxy with --header optional to send plain clients to the default route`,
        }),
      },
      plain === undefined ? 'header refused' : `header refused: ${plain} without PiCoP`,
    );
    this.client.destroy();
    this.#c.onEnd(this);
  }

  /**
   * Relays the client to the route of its Env-Id, sending `rest` on; returns false when the
   * destination wants the client paused.
   */
  #route({ fields, rest }: HeaderReadResult): boolean {
    this.#reader = undefined;
    clearTimeout(this.#headerTimer);
    const { options: o, routes, stats: all, log } = this.#c;
    all.observeHeader((performance.now() - this.#started) / 1000);
    const client = this.client;
    if (this.#c.outgoing.has(`${peer(client)}>${peer(client, 'local')}`)) {
      // This proxy's own connection to a destination: a route leads back here.
      all.label('_unknown').accepted++;
      all.fail('_unknown', 'routing_loop');
      log?.error({ peer: peer(client) }, 'routing loop: a route leads back to this proxy');
      client.destroy();
      this.#c.onEnd(this);
      return false;
    }
    const envId = fields?.get(o.fieldName ?? DEFAULTS.fieldName);
    const routed = envId === undefined ? undefined : routes.get(envId);
    const target = routed ?? routes.default;
    // Only Env-Ids with a route become metric labels.
    const label =
      routed !== undefined ? (envId as string) : fields === undefined ? '_plain' : '_default';
    const stats = all.label(label);
    stats.accepted++;
    log?.debug(
      { peer: peer(client), envId, destination: target && formatAddress(target) },
      routed !== undefined
        ? 'routed'
        : fields === undefined
          ? 'no header: default route'
          : 'default route',
    );
    if (target === undefined || client.destroyed) {
      all.fail(label, target === undefined ? 'no_route' : 'client_closed');
      log?.info({ peer: peer(client), envId }, target === undefined ? 'no route' : 'client closed');
      client.destroy();
      this.#c.onEnd(this);
      return false;
    }
    // Encoded before the destination is opened: a header this proxy accepted is re-sent within
    // the same limit, or the connection is refused before anything else happens.
    let header: Buffer | undefined;
    if (o.propagate && fields !== undefined) {
      try {
        header = encodeHeader(fields, { dialect: o.dialect, maxLength: o.maxHeaderBytes });
      } catch (err) {
        this.#refuse(err);
        return false;
      }
    }
    stats.active++;
    this.#envId = envId;
    this.#target = target;
    const destination = formatAddress(target);
    let outgoing: string | undefined;
    this.#relay = new Relay(client, {
      target,
      header,
      connectTimeoutMs: o.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      idleTimeoutMs: o.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      onBytes: (direction, n) => {
        this.#lastFromClient = direction === 'toDestination';
        // Timed only while a route change waits for quiet: no clock read per chunk otherwise.
        if (this.#retireTimer !== undefined) this.#lastActivity = performance.now();
        if (direction === 'toClient') stats.bytesToClient += n;
        else stats.bytesToDestination += n;
      },
      onConnect: (socket) => {
        outgoing = `${peer(socket, 'local')}>${peer(socket)}`;
        this.#c.outgoing.add(outgoing);
      },
      // The client is closed at once; the log names the route that failed.
      onDestinationError: (err) =>
        log?.error(
          { envId, destination, code: err.code, err: err.message },
          `destination error: ${routed !== undefined ? `the route of ${envId}` : 'the default route'}, ${destination}: ${err.code ?? err.message}`,
        ),
      onClose: (result) => {
        clearTimeout(this.#retireTimer);
        if (outgoing !== undefined) this.#c.outgoing.delete(outgoing);
        stats.active--;
        if (result.failure !== undefined) all.fail(label, result.failure);
        if (result.failure === 'idle_timeout') {
          log?.info({ envId, destination, idleTimeoutMs: o.idleTimeoutMs }, 'idle timeout');
        }
        this.#c.onEnd(this);
        log?.debug(
          { envId, destination, ...result, ms: Math.round(performance.now() - this.#started) },
          'connection closed',
        );
      },
    });
    return rest.length === 0 || this.#relay.fromClient(rest, false);
  }
}

/** What a client that sent no (complete) header is told in the log: the proxy's own option. */
function noHeaderError(bytesRead: number, timeoutMs: number): PicopError {
  return new PicopError(
    'ERR_PICOP_TIMEOUT',
    bytesRead === 0
      ? `No PiCoP header within ${timeoutMs} ms: the client sent nothing. A client whose server speaks first (MySQL) must send the header: is it wrapped by @picop/*? (--header-timeout)`
      : `No complete PiCoP header within ${timeoutMs} ms (${bytesRead} bytes so far): is the client wrapped by @picop/*, or is it slow? (--header-timeout)`,
  );
}

/** `address:port` of a socket's remote (or local) end, IPv4-mapped addresses as IPv4. */
function peer(socket: net.Socket, end: 'remote' | 'local' = 'remote'): string {
  const address = end === 'remote' ? socket.remoteAddress : socket.localAddress;
  const port = end === 'remote' ? socket.remotePort : socket.localPort;
  return `${address?.replace(/^::ffff:/, '')}:${port}`;
}
