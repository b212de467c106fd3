import type net from 'node:net';
import type { Address } from '@picop/routes';
import { connectReading, owned } from './read-path.js';

/** TCP keep-alive on both legs: the kernel finds a peer that vanished without FIN or RST. */
export const KEEP_ALIVE_INITIAL_DELAY_MS = 30_000;

/** How a relay ended: bytes each way, and the first failure (none: both sides closed cleanly). */
export interface RelayResult {
  toDestination: number;
  toClient: number;
  failure:
    | 'connect_error'
    | 'connect_timeout'
    | 'destination_error'
    | 'client_error'
    | 'idle_timeout'
    /** Closed, quiet, after its route changed: the client reconnects to the new route. */
    | 'rerouted'
    | undefined;
}

/** What {@link Relay} needs besides the client. */
export interface RelayOptions {
  target: Address;
  /** Sent to the destination first: the re-sent header (`propagate`). */
  header: Buffer | undefined;
  connectTimeoutMs: number;
  /** 0: never. */
  idleTimeoutMs: number;
  /** Called with each chunk's size as it is relayed (live byte counters). */
  onBytes(direction: 'toDestination' | 'toClient', n: number): void;
  /** Called once, when both sockets have closed. */
  onClose(result: RelayResult): void;
  /** A destination error, for the log. */
  onDestinationError(err: NodeJS.ErrnoException): void;
  /** The connection to the destination is up. */
  onConnect?(destination: net.Socket): void;
}

/**
 * Two sockets relayed both ways: the client (already reading, its header taken; its bytes come
 * through {@link Relay.fromClient}) and a new connection to `target`. Backpressure both ways, half-close passed on, and one `onClose` with
 * the result.
 */
export class Relay {
  readonly destination: net.Socket;
  readonly #client: net.Socket;
  readonly #onBytes: RelayOptions['onBytes'];
  #toDestination = 0;
  #toClient = 0;
  #failure: RelayResult['failure'];

  constructor(client: net.Socket, o: RelayOptions) {
    this.#client = client;
    this.#onBytes = o.onBytes;
    const destination = connectReading(
      {
        host: o.target.host,
        port: o.target.port,
        noDelay: true,
        allowHalfOpen: true,
        keepAlive: true,
        keepAliveInitialDelay: KEEP_ALIVE_INITIAL_DELAY_MS,
      },
      (chunk, isOwned) => {
        this.#toClient += chunk.length;
        o.onBytes('toClient', chunk.length);
        return client.write(owned(chunk, isOwned));
      },
    );
    this.destination = destination;
    if (o.idleTimeoutMs > 0) {
      // Any byte either way is activity on both sockets (a read on one, a write on the other).
      const idle = () => {
        this.#fail('idle_timeout');
        client.destroy();
        destination.destroy();
      };
      client.setTimeout(o.idleTimeoutMs, idle);
      destination.setTimeout(o.idleTimeoutMs, idle);
    }
    client.on('drain', () => destination.resume());
    destination.on('drain', () => client.resume());
    destination.on('end', () => {
      // Both sides ended and every byte handed to the kernel: closing sends what is left and the
      // FIN, as end() would, without a shutdown() and one more turn of the event loop first.
      if (client.readableEnded && client.writableLength === 0) client.destroy();
      else client.end();
    });
    const connectTimer = setTimeout(() => {
      destination.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
    }, o.connectTimeoutMs);
    let connected = false;
    destination.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      o.onConnect?.(destination);
    });
    destination.on('error', (err: NodeJS.ErrnoException) => {
      this.#fail(
        connected
          ? 'destination_error'
          : err.code === 'ETIMEDOUT'
            ? 'connect_timeout'
            : 'connect_error',
      );
      o.onDestinationError(err);
      client.destroy();
    });
    client.on('error', () => {
      this.#fail('client_error');
      destination.destroy();
    });
    let open = 2;
    const closed = () => {
      if (--open > 0) return;
      clearTimeout(connectTimer);
      o.onClose({
        toDestination: this.#toDestination,
        toClient: this.#toClient,
        failure: this.#failure,
      });
    };
    destination.on('close', (hadError) => {
      if (hadError || !client.writableEnded) client.destroy();
      closed();
    });
    client.on('close', (hadError) => {
      if (hadError || !destination.writableEnded) destination.destroy();
      closed();
    });
    if (o.header !== undefined) destination.write(o.header);
  }

  /** Bytes from the client; false pauses reading it until the destination drains. */
  fromClient(chunk: Buffer, isOwned: boolean): boolean {
    this.#toDestination += chunk.length;
    this.#onBytes('toDestination', chunk.length);
    return this.destination.write(owned(chunk, isOwned));
  }

  /** The client ended its side: pass it on. */
  endFromClient(): void {
    this.destination.end();
  }

  /** Closes both sides now; `failure`, if given, is how the relay ended. */
  destroy(failure?: NonNullable<RelayResult['failure']>): void {
    if (failure !== undefined) this.#fail(failure);
    this.#client.destroy();
    this.destination.destroy();
  }

  #fail(failure: NonNullable<RelayResult['failure']>): void {
    this.#failure ??= failure;
  }
}
