import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import type { ContextPools, PicopPools } from '@picop/net-wrap';
import {
  baseHeader,
  coverLibrary,
  emitError,
  inRouted,
  routeResult,
  splitOptions,
  wrapperPools,
} from '@picop/net-wrap/internal';
import { setEnvId } from '@picop/propagator';
import type { Callback, Command, Redis as IORedis, RedisOptions } from 'ioredis';
import { checkIoredis, clientIsIdle, ioredisClass } from './ioredis-internals.js';
import { isolated, isolatedKeys } from './isolate.js';
import { checkOptions, connectorFor } from './PicopConnector.js';
import type { PicopRedisClientOptions, PicopRedisOptions } from './types.js';

const LABEL = '@picop/redis';

// Pub/sub deliveries of an environment's client: emitted on the wrapper inside the message's
// environment (Env-Id appended), so a handler's calls go there too.
const MESSAGES = [
  'message',
  'messageBuffer',
  'pmessage',
  'pmessageBuffer',
  'smessage',
  'smessageBuffer',
] as const;

type Script = Parameters<IORedis['defineCommand']>[1];

/** A pipeline (or transaction) whose `exec`, which sends its commands, is routed work too. */
const routedExec = (result: unknown) => routeResult(result, ['exec']);
type Method = (this: IORedis, ...args: unknown[]) => unknown;

/** The constructor arguments of ioredis, with one of them an options object. */
function withOptions(args: unknown[]): { index: number; options: PicopRedisClientOptions } {
  const index = args.findIndex((a) => a !== null && typeof a === 'object');
  return { index, options: (index < 0 ? {} : args[index]) as PicopRedisClientOptions };
}

/** A rejected promise for a call that could not be routed, given to its callback too. */
function rejected(err: unknown, args: unknown[]): Promise<never> {
  const promise = Promise.reject(err);
  const callback = args.at(-1);
  if (typeof callback === 'function') {
    promise.catch((e: unknown) => (callback as Callback)(e as Error));
  }
  return promise;
}

/**
 * With `showFriendlyErrorStack`, ioredis drops its own frames from a command's stack, up to the
 * caller's: the routing frame is dropped too.
 */
// Our routing, and the context it runs the command in while a PicopGuard marks it.
const ROUTE_FRAME =
  /picopRoute| inRouted |@opentelemetry[\\/]|AsyncLocalStorage\.run|node:async_hooks/;

function withoutRouteFrames(command: Command): void {
  const error = (command as unknown as { errorStack?: Error }).errorStack;
  if (error?.stack !== undefined) {
    error.stack = error.stack
      .split('\n')
      .filter((line) => !ROUTE_FRAME.test(line))
      .join('\n');
  }
}

// PicopGuard's start-up check: ioredis is routed in this process.
coverLibrary('ioredis');

const IORedisClass = ioredisClass();

/** The ioredis client of one environment. */
class EnvironmentClient extends IORedisClass {
  override sendCommand(command: Command, stream?: Parameters<IORedis['sendCommand']>[1]): unknown {
    withoutRouteFrames(command);
    return super.sendCommand(command, stream);
  }
}

/**
 * ioredis with one connection per environment. The `Redis` object is itself the connection of
 * work without an Env-Id (the baseline, or the `envId` fallback): it connects, reports its state
 * and emits its events as ioredis does. Every command, pipeline, transaction, script, scan stream
 * and `monitor()` called in a context with another Env-Id runs on that environment's own ioredis
 * client (auto-pipelining and the offline queue included), whose socket starts with the
 * environment's PiCoP header on the first connect and on every reconnect. Takes what ioredis's
 * `Redis` takes, plus a `picop` key.
 *
 * @example
 * import { Redis } from '@picop/redis';
 * const redis = new Redis({ host: 'redis-proxy', port: 6379 });
 * await redis.set('cart:42', '...'); // in the active request's environment
 */
export class Redis extends IORedisClass {
  readonly #pools: ContextPools<IORedis> | undefined;
  readonly #clientOptions: RedisOptions = {};
  readonly #scripts = new Map<string, Script>();
  readonly #builtins = new Set<string>();
  // With key-prefix isolation: the environments' namespace, which the baseline may not name.
  #isolatedKeys: string | undefined;
  // quit()/disconnect() by the user: until connect(), every call fails as ioredis's do.
  #ended = false;

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
    const { enabled, picop } = splitOptions<PicopRedisOptions, PicopRedisClientOptions>(options);
    if (enabled) {
      checkIoredis();
      checkOptions(options);
    }
    let resolved: RedisOptions = {};
    // Checked and made before ioredis's constructor, which connects: a bad option opens nothing.
    const pools = enabled
      ? wrapperPools<IORedis>(
          picop,
          LABEL,
          {
            base: () => this,
            create: ({ header, envId, route }) =>
              this.#createClient(header, envId, {
                ...(route && { host: route.host, port: route.port }),
                ...(envId !== undefined && isolated(picop.isolate, envId, resolved.keyPrefix)),
              }),
            destroy: (client) =>
              client.quit().then(
                () => undefined,
                () => client.disconnect(),
              ),
            isIdle: clientIsIdle,
          },
          'maxClients',
        )
      : undefined;
    const own = enabled ? { ...options, Connector: connectorFor(baseHeader(picop)) } : options;
    super(...((index < 0 ? [...args, own] : args.with(index, own)) as []));
    if (pools === undefined) return;
    // ioredis has started to connect: a failure from here closes it before the socket opens.
    try {
      checkOptions({ path: this.options.path });
      const {
        picop: _picop,
        Connector: _connector,
        ...rest
      } = this.options as PicopRedisClientOptions;
      resolved = rest;
      this.#clientOptions = resolved;
      this.#isolatedKeys = isolatedKeys(picop.isolate, resolved.keyPrefix);
      this.#pools = pools;
    } catch (err) {
      super.disconnect();
      void pools.close();
      throw err;
    }
  }

  /**
   * The clients of the environments other than the baseline (this object): counters `size`,
   * `created`, `evicted`, `expired` for metrics, and `byEnvId()`. `undefined` with PiCoP off.
   */
  get pools(): PicopPools<IORedis> | undefined {
    return this.#live;
  }

  // ioredis's constructor calls connect() before this class's fields exist.
  get #live(): ContextPools<IORedis> | undefined {
    return #pools in this ? this.#pools : undefined;
  }

  // The client for the active context: this object for the baseline, and after quit() or
  // disconnect() (so calls fail with ioredis's own "Connection is closed.").
  #target(): IORedis {
    const pools = this.#live;
    return pools === undefined || this.#ended ? this : pools.acquire();
  }

  static #route: (name: string, own: Method) => Method;
  static {
    // Every command method runs on the active environment's client, so that its auto-pipelining,
    // scripts and offline queue are that client's. quit() ends them all; monitor() is below.
    const routed = (name: string, own: Method): Method =>
      function picopRoute(this: IORedis, ...args: unknown[]) {
        // A pipeline copies the wrapper's script methods: there they are the pipeline's own.
        if (!(#pools in this)) return own.apply(this, args);
        let target: IORedis;
        try {
          target = (this as Redis).#target();
        } catch (err) {
          return rejected(err, args);
        }
        if (target === this) {
          const result = inRouted(own, this, ...args);
          return name === 'pipeline' || name === 'multi'
            ? routedExec((this as Redis).#guardPipeline(result))
            : result;
        }
        const method = (target as unknown as Record<string, Method>)[name] as Method;
        const result = inRouted(method, target, ...args);
        return name === 'pipeline' || name === 'multi' ? routedExec(result) : result;
      };
    const proto = IORedisClass.prototype as unknown as Record<string, Method>;
    const names = IORedisClass.prototype
      .getBuiltinCommands()
      .flatMap((name) => [name, `${name}Buffer`])
      .concat(['call', 'callBuffer', 'send_command', 'pipeline', 'monitor'])
      .concat(
        Object.getOwnPropertyNames(IORedisClass.prototype).filter((n) => /scan.*Stream$/.test(n)),
      )
      .filter((name) => name !== 'quit' && typeof proto[name] === 'function');
    for (const name of names) {
      Object.defineProperty(Redis.prototype, name, {
        value: routed(name, proto[name] as Method),
        writable: true,
        configurable: true,
      });
    }
    Redis.#route = routed;
    // duplicate() makes a wrapper with the same options, `picop` included (ioredis's makes a plain
    // client). Set here, not declared, so that its type stays ioredis's own (generic in ioredis 6).
    Object.defineProperty(Redis.prototype, 'duplicate', {
      value: function duplicate(this: Redis, override?: Partial<PicopRedisClientOptions>): Redis {
        if (this.#live === undefined) {
          return new Redis({ ...this.options, ...override } as PicopRedisClientOptions);
        }
        const { Connector: _connector, ...options } = this.options;
        return new Redis({ ...options, ...override } as PicopRedisClientOptions);
      },
      writable: true,
      configurable: true,
    });
  }

  /**
   * Sends on this (baseline) connection, as ioredis's internal commands do. With key-prefix
   * isolation, a command naming a key in the environments' namespace fails instead.
   */
  override sendCommand(command: Command, stream?: Parameters<IORedis['sendCommand']>[1]): unknown {
    withoutRouteFrames(command);
    const refused = this.#isolatedKeyError(command);
    if (refused !== undefined) {
      command.reject(refused);
      return command.promise;
    }
    return super.sendCommand(command, stream);
  }

  /** With key-prefix isolation: the error of a baseline command naming an environment's key. */
  #isolatedKeyError(command: Command): PicopError | undefined {
    const namespace = #isolatedKeys in this ? this.#isolatedKeys : undefined;
    if (namespace === undefined) return undefined;
    const key = command
      .getKeys()
      .find((k) => (typeof k === 'string' ? k : k.toString('latin1')).startsWith(namespace));
    if (key === undefined) return undefined;
    return new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `${LABEL}: the baseline cannot use ${JSON.stringify(String(key))}: keys under ${JSON.stringify(namespace)} are isolated environments'`,
    );
  }

  /**
   * A baseline pipeline or transaction whose commands naming an environment's key throw when
   * queued: refused later, one missing reply would shift a transaction's results.
   */
  #guardPipeline(result: unknown): unknown {
    if (this.#isolatedKeys === undefined) return result;
    const pipeline = result as { sendCommand?: (command: Command) => unknown };
    const send = pipeline.sendCommand;
    if (typeof send !== 'function') return result;
    pipeline.sendCommand = (command: Command) => {
      const refused = this.#isolatedKeyError(command);
      if (refused !== undefined) throw refused;
      return send.call(pipeline, command);
    };
    return result;
  }

  /** Defines a Lua command on every environment's client, present and future. */
  override defineCommand(name: string, definition: Script): void {
    super.defineCommand(name, definition);
    if (this.#live === undefined) return;
    this.#scripts.set(name, definition);
    for (const client of this.#live.values()) client.defineCommand(name, definition);
    this.#routeOwn(name);
  }

  /** Adds a command ioredis does not know to every environment's client, present and future. */
  override addBuiltinCommand(name: string): void {
    super.addBuiltinCommand(name);
    if (this.#live === undefined) return;
    this.#builtins.add(name);
    for (const client of this.#live.values()) client.addBuiltinCommand(name);
    this.#routeOwn(name);
  }

  #routeOwn(name: string): void {
    const self = this as unknown as Record<string, Method>;
    for (const fn of [name, `${name}Buffer`]) self[fn] = Redis.#route(fn, self[fn] as Method);
  }

  /** Connects this (baseline) client, again after `quit()`/`disconnect()`. */
  override connect(callback?: Callback<void>): Promise<void> {
    if (#ended in this) this.#ended = false;
    // Its reconnects, ready check and resubscriptions run in no request's context.
    return context.with(ROOT_CONTEXT, () => super.connect(callback));
  }

  /** Quits this client and every environment's client. */
  override quit(callback?: Callback<'OK'>): Promise<'OK'> {
    if (this.#live !== undefined) {
      this.#ended = true;
      void this.#live?.clear();
    }
    return super.quit(callback);
  }

  /** Disconnects this client and every environment's client (with `reconnect`, each reconnects). */
  override disconnect(reconnect = false): void {
    if (this.#live !== undefined) {
      if (reconnect) for (const client of this.#live.values()) client.disconnect(true);
      else {
        this.#ended = true;
        void this.#live?.clear();
      }
    }
    super.disconnect(reconnect);
  }

  #createClient(header: Buffer, envId: string | undefined, own: RedisOptions): IORedis {
    const client = new EnvironmentClient({
      ...this.#clientOptions,
      ...own,
      Connector: connectorFor(header),
    });
    for (const [name, definition] of this.#scripts) client.defineCommand(name, definition);
    for (const name of this.#builtins) client.addBuiltinCommand(name);
    client.on('error', (err: unknown) => emitError(this, LABEL, err, envId));
    const ctx = envId === undefined ? ROOT_CONTEXT : setEnvId(ROOT_CONTEXT, envId);
    for (const event of MESSAGES) {
      client.on(event, (...args: unknown[]) =>
        context.with(ctx, () => this.emit(event, ...args, envId)),
      );
    }
    return client;
  }
}

// The build renames a class that refers to itself (`_Redis`); libraries tell a client from an
// options object by `constructor.name` (bee-queue), so it keeps ioredis's.
Object.defineProperty(Redis, 'name', { value: 'Redis' });
