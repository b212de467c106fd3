import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { ContextPools, picopEnabled } from '@picop/net-wrap';
import { setEnvId } from '@picop/propagator';
import type { Command } from 'ioredis';
import { type ChainableCommander, Redis as IORedis, type RedisOptions } from 'ioredis';
import type { RedisInternals } from './internal-types.js';
import { checkOptions, connectorFor } from './PicopConnector.js';
import type { PicopRedisClientOptions, PicopRedisOptions } from './types.js';

// Events of the per-environment clients that reach listeners on the wrapper (Env-Id appended).
const FORWARDED = ['connect', 'ready', 'close', 'reconnecting', 'end', 'error'] as const;
// Pub/sub deliveries: emitted inside the message's environment, so a handler's calls go there too.
const MESSAGES = [
  'message',
  'messageBuffer',
  'pmessage',
  'pmessageBuffer',
  'smessage',
  'smessageBuffer',
] as const;

/** The constructor arguments of ioredis, with one of them an options object. */
function withOptions(args: unknown[]): { index: number; options: PicopRedisClientOptions } {
  const index = args.findIndex((a) => a !== null && typeof a === 'object');
  return { index, options: (index < 0 ? {} : args[index]) as PicopRedisClientOptions };
}

/**
 * ioredis with one connection per environment: every command runs on the client of the active
 * context's Env-Id, whose socket starts with that environment's PiCoP header, on the first connect
 * and on every reconnect. Takes what ioredis's `Redis` takes, plus a `picop` key.
 *
 * @example
 * import { Redis } from '@picop/redis';
 * const redis = new Redis({ host: 'redis-proxy', port: 6379 });
 * await redis.set('cart:42', '...'); // in the active request's environment
 */
export class Redis extends IORedis {
  readonly #pools: ContextPools<IORedis> | undefined;
  readonly #clientOptions: RedisOptions;
  readonly #args: unknown[];

  constructor(port: number, host: string, options: PicopRedisClientOptions);
  constructor(path: string, options: PicopRedisClientOptions);
  constructor(port: number, options: PicopRedisClientOptions);
  constructor(port: number, host: string);
  constructor(options: PicopRedisClientOptions);
  constructor(port: number);
  constructor(path: string);
  constructor();
  constructor(...args: unknown[]) {
    const { index, options } = withOptions(args);
    const enabled = picopEnabled(options.picop);
    // The wrapper never opens a connection of its own: its clients do.
    const forced = { ...options, lazyConnect: true };
    super(...((enabled ? (index < 0 ? [...args, forced] : args.with(index, forced)) : args) as []));
    this.#args = args;
    this.#clientOptions = {};
    if (!enabled) return;

    const { picop: _picop, ...resolved } = this.options as PicopRedisClientOptions;
    checkOptions(resolved);
    this.#clientOptions = { ...resolved, lazyConnect: options.lazyConnect ?? false };
    const picop: PicopRedisOptions = options.picop || {};
    this.#pools = new ContextPools<IORedis>({
      ...picop,
      max: picop.maxClients,
      create: ({ header, envId }) => this.#createClient(header, envId),
      destroy: (client) =>
        client.quit().then(
          () => undefined,
          () => client.disconnect(),
        ),
      isIdle: (client) => {
        const c = client as unknown as RedisInternals;
        return (
          !c.condition?.subscriber && c.commandQueue.length === 0 && c.offlineQueue.length === 0
        );
      },
    });
    // `status` is the default-context client's.
    Object.defineProperty(this, 'status', {
      configurable: true,
      // Reading the status opens nothing: 'wait' until that client exists.
      get: () => this.#pools?.peek(ROOT_CONTEXT)?.status ?? 'wait',
      set: () => {},
    });
  }

  /** The per-environment clients: counters `size`, `created`, `evicted`, `expired` for metrics. */
  get pools(): ContextPools<IORedis> | undefined {
    // ioredis's constructor calls connect() (with PiCoP off) before this class's fields exist.
    return #pools in this ? this.#pools : undefined;
  }

  override sendCommand(command: Command, stream?: Parameters<IORedis['sendCommand']>[1]): unknown {
    if (this.pools === undefined) return super.sendCommand(command, stream);
    let client: IORedis;
    try {
      client = this.pools.acquire();
    } catch (err) {
      command.reject(err as Error);
      return command.promise;
    }
    return client.sendCommand(command, stream);
  }

  /** A pipeline on the client of the environment active now. */
  override pipeline(commands?: unknown[][]): ChainableCommander {
    return this.pools === undefined
      ? super.pipeline(commands)
      : this.pools.acquire().pipeline(commands);
  }

  /** A MULTI transaction on the client of the environment active now. */
  override multi(options: { pipeline: false }): Promise<'OK'>;
  override multi(): ChainableCommander;
  override multi(options: { pipeline: true }): ChainableCommander;
  override multi(commands?: unknown[][]): ChainableCommander;
  override multi(...args: unknown[]): ChainableCommander | Promise<'OK'> {
    const target = this.pools?.acquire();
    return (target ? target.multi : super.multi).apply(target ?? this, args as []);
  }

  /** Connects the client of the environment active now (others connect on first use). */
  override connect(callback?: () => void): Promise<void> {
    if (this.pools === undefined) return super.connect(callback);
    const client = this.pools.acquire();
    const ready = client.status === 'wait' ? client.connect() : Promise.resolve();
    return ready.then(() => callback?.());
  }

  /** A new wrapper with the same options (and the same `picop` options). */
  override duplicate(override?: Partial<PicopRedisClientOptions>): Redis {
    const { index, options } = withOptions(this.#args);
    const args =
      index < 0
        ? [...this.#args, { ...override }]
        : this.#args.with(index, { ...options, ...override });
    return new (Redis as new (...a: unknown[]) => Redis)(...args);
  }

  /** Quits every environment's client. */
  override quit(callback?: (err?: Error | null, res?: 'OK') => void): Promise<'OK'> {
    if (this.pools === undefined) return super.quit(callback);
    const done = this.pools.close().then(() => 'OK' as const);
    done.then(
      (res) => callback?.(null, res),
      (err: Error) => callback?.(err),
    );
    return done;
  }

  /** Disconnects every environment's client (with `reconnect`, each reconnects). */
  override disconnect(reconnect = false): void {
    if (this.pools === undefined) {
      super.disconnect(reconnect);
      return;
    }
    for (const client of this.pools.values()) client.disconnect(reconnect);
    if (!reconnect) void this.pools.close();
  }

  #createClient(header: Buffer, envId: string | undefined): IORedis {
    const client = new IORedis({ ...this.#clientOptions, Connector: connectorFor(header) });
    for (const event of FORWARDED) {
      client.on(event, (...args: unknown[]) => {
        if (event === 'error' && this.listenerCount('error') === 0) {
          // As ioredis does for its own unhandled errors: report, never throw.
          console.error('[@picop/redis] Unhandled error event:', args[0]);
          return;
        }
        this.emit(event, ...args, envId);
      });
    }
    const ctx = envId === undefined ? ROOT_CONTEXT : setEnvId(ROOT_CONTEXT, envId);
    for (const event of MESSAGES) {
      client.on(event, (...args: unknown[]) =>
        context.with(ctx, () => this.emit(event, ...args, envId)),
      );
    }
    return client;
  }
}
