import { type Context, context, ROOT_CONTEXT } from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import type { ContextPools, PicopPools } from '@picop/net-wrap';
import {
  baseHeader,
  coverLibrary,
  emitError,
  fallbackEnvId,
  inRouted,
  type PicopWrapperOptions,
  routedObject,
  splitOptions,
  wrapperPools,
} from '@picop/net-wrap/internal';
import { setEnvId } from '@picop/propagator';
import {
  createClient as createRedisClient,
  createClientPool as createRedisClientPool,
  type RedisClientOptions,
  type RedisClientType,
  type RedisFunctions,
  type RedisModules,
  type RedisPoolOptions,
  type RedisScripts,
  type RespVersions,
  type TypeMapping,
} from 'redis';
import { guardBaseline, isolated, type NodeRedisIsolation } from './isolate.js';
import { checkSocketOptions, checkSockets, withHeader } from './socket-hook.js';

export type { NodeRedisIsolation } from './isolate.js';

const LABEL = '@picop/node-redis';

// PicopGuard's start-up check: node-redis is routed in this process.
coverLibrary('redis');

/** The `picop` key of the options. */
export interface PicopNodeRedisOptions extends PicopWrapperOptions {
  /** Logical isolation on the client's own Redis: see {@link NodeRedisIsolation}. */
  isolate?: NodeRedisIsolation;
}

/** node-redis's client options plus `picop` (`false` turns PiCoP off: plain node-redis). */
export type PicopRedisClientOptions<
  M extends RedisModules = RedisModules,
  F extends RedisFunctions = RedisFunctions,
  S extends RedisScripts = RedisScripts,
  RESP extends RespVersions = RespVersions,
  TYPE_MAPPING extends TypeMapping = TypeMapping,
> = RedisClientOptions<M, F, S, RESP, TYPE_MAPPING> & { picop?: PicopNodeRedisOptions | false };

// What this file calls on node-redis clients, whatever their modules, scripts and functions.
type Client = Record<PropertyKey, unknown> & {
  connect(): Promise<unknown>;
  destroy(): void;
  close?(): Promise<void>;
  quit?(): Promise<unknown>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  prependListener(event: string, listener: (...args: unknown[]) => void): unknown;
  emit(event: string, ...args: unknown[]): boolean;
  listenerCount(event: string): number;
};
type Method = (this: unknown, ...args: unknown[]) => unknown;

// Methods of the client object itself: its events and its lifecycle, which cover every
// environment's connection.
const EVENTS = new Set([
  'on',
  'once',
  'off',
  'addListener',
  'removeListener',
  'prependListener',
  'prependOnceListener',
  'removeAllListeners',
  'emit',
  'listeners',
  'rawListeners',
  'listenerCount',
  'eventNames',
  'setMaxListeners',
  'getMaxListeners',
]);
const ENDS = new Set(['quit', 'QUIT', 'close', 'disconnect', 'destroy']);
// Methods returning a view of the client (other command options, the legacy interface): the
// view of the active environment's client, made once per client.
const VIEWS = new Set([
  'withTypeMapping',
  'withCommandOptions',
  'withAbortSignal',
  'asap',
  'legacy',
]);
// State of the active environment's connection, not the baseline's.
const STATE = new Set(['isWatching', 'isDirtyWatch', 'isPubSubActive']);
// Pub/sub: the listener (second argument) runs in the subscribing environment.
const SUBSCRIBE = /^[sp]?(un)?subscribe$/i;

const ROUTERS = new WeakMap<object, Router>();

const AsyncFunction = (async () => {}).constructor;
const AsyncGeneratorFunction = async function* () {}.constructor;

/** `err` as the method would report it: a rejection, a failing iterator, or a throw. */
function failed(method: unknown, err: unknown): unknown {
  if (method instanceof AsyncFunction) return Promise.reject(err);
  if (method instanceof AsyncGeneratorFunction) {
    const fails: AsyncIterableIterator<never> = {
      next: () => Promise.reject(err),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    return fails;
  }
  throw err;
}

/**
 * The client behind a routed object: the environment's client, or a view of it (`legacy()`,
 * `withTypeMapping()`), made once per client.
 */
type View = (client: Client) => Record<PropertyKey, unknown>;

/** What a router makes per environment: node-redis clients, or pools of them. */
interface Kind {
  make(options: Record<string, unknown>): Client;
  /** Clients emit 'connect' for each socket: their sockets are checked (see checkSockets). */
  checked: boolean;
  duplicate?(options: PicopRedisClientOptions): object;
}

class Router {
  readonly base: Client;
  readonly #pools: ContextPools<Client>;
  readonly #contexts = new WeakMap<Client, Context>();
  readonly #closing = new WeakSet<Client>();
  readonly #listeners = new WeakMap<Method, Map<Client, Method>>();
  readonly #options: PicopRedisClientOptions;
  readonly #kind: Kind;
  // quit(), close(), disconnect(), destroy() by the user: until connect(), calls go to the
  // baseline's client, which fails them as node-redis does ("The client is closed").
  #ended = false;
  wrapper!: object;

  constructor(options: PicopRedisClientOptions, picop: PicopNodeRedisOptions, kind: Kind) {
    const { library } = splitOptions<PicopNodeRedisOptions, PicopRedisClientOptions>(options);
    checkSocketOptions(library.socket as { path?: unknown }, library.url);
    this.#options = options;
    this.#kind = kind;
    // Checked and made before node-redis's client: a bad option opens nothing.
    this.#pools = wrapperPools<Client>(picop, LABEL, {
      base: () => this.base,
      create: ({ header, envId, route }) =>
        this.#client(isolated(library, picop.isolate, envId), header, envId, route),
      destroy: (client) => {
        // Closed while its handshake still runs, node-redis reports the socket's close: not news.
        this.#closing.add(client);
        return client.close?.() ?? client.quit?.().then(() => undefined);
      },
      isIdle: (client) => !client.isPubSubActive && !client.isWatching,
    });
    const envId = fallbackEnvId(picop.envId);
    this.base = this.#client(library, baseHeader(picop), envId ?? undefined, undefined);
    // Not connected yet: a failure here leaves nothing open.
    guardBaseline(this.base, picop.isolate, library.keyPrefix);
  }

  get pools(): ContextPools<Client> {
    return this.#pools;
  }

  /** The active environment's client if it exists, or the baseline's. */
  peek(): Client {
    return this.#ended ? this.base : (this.#pools.peek() ?? this.base);
  }

  #client(
    library: Omit<PicopRedisClientOptions, 'picop'>,
    header: Buffer,
    envId: string | undefined,
    route: { host: string; port: number } | undefined,
  ): Client {
    const options = { ...library } as Record<string, unknown>;
    if (route !== undefined) {
      if (typeof library.url === 'string') {
        const url = new URL(library.url);
        url.hostname = route.host;
        url.port = String(route.port);
        options.url = url.toString();
      }
      options.socket = { ...library.socket, host: route.host, port: route.port };
    }
    let opened = () => {};
    options.socket = withHeader(options.socket as object | undefined, header, () => opened());
    const client = this.#kind.make(options);
    // Set before connect(), which opens the first socket.
    if (this.#kind.checked) {
      opened = checkSockets(client, LABEL, (err) => this.#error(client, err, envId));
    }
    this.#contexts.set(client, envId === undefined ? ROOT_CONTEXT : setEnvId(ROOT_CONTEXT, envId));
    if (this.base !== undefined) {
      // An environment's client: connected at once (its commands wait in its offline queue), its
      // errors on the wrapper with the Env-Id after them. Its reconnects run in no request's
      // context.
      client.on('error', (err) => this.#error(client, err, envId));
      context.with(ROOT_CONTEXT, () => client.connect()).catch(() => {});
    }
    return client;
  }

  #error(client: Client, err: unknown, envId: string | undefined): void {
    if (this.#closing.has(client)) return;
    if (client === this.base) client.emit('error', err);
    else emitError(this.base, LABEL, err, envId);
  }

  /** The client of the active environment (the baseline's after an end, to fail as it does). */
  target(): Client {
    return this.#ended ? this.base : this.#pools.acquire();
  }

  /** `listener` running in the environment of `client`'s subscription. */
  listener(client: Client, listener: Method): Method {
    let byClient = this.#listeners.get(listener);
    if (byClient === undefined) {
      byClient = new Map();
      this.#listeners.set(listener, byClient);
    }
    let own = byClient.get(client);
    if (own === undefined) {
      const ctx = this.#contexts.get(client) ?? ROOT_CONTEXT;
      own = (...args: unknown[]) => context.with(ctx, listener, undefined, ...args);
      byClient.set(client, own);
    }
    return own;
  }

  async connect(): Promise<object> {
    this.#ended = false;
    await context.with(ROOT_CONTEXT, () => this.base.connect());
    return this.wrapper;
  }

  end(name: string, args: unknown[]): unknown {
    this.#ended = true;
    const closing = this.#pools.clear();
    const result = (this.base[name] as Method).apply(this.base, args);
    if (result instanceof Promise) return Promise.all([result, closing]).then(([r]) => r);
    return result;
  }

  duplicate(overrides: object | undefined): object {
    const duplicate = this.#kind.duplicate;
    if (duplicate === undefined) throw new TypeError('duplicate is not a function');
    return duplicate({ ...this.#options, ...overrides } as PicopRedisClientOptions);
  }
}

/** The routing of one object: the client itself (`view` absent) or one of its views. */
function routed(router: Router, view?: View): object {
  const views = new WeakMap<Client, Record<PropertyKey, unknown>>();
  const on = (client: Client): Record<PropertyKey, unknown> => {
    if (view === undefined) return client;
    let made = views.get(client);
    if (made === undefined) {
      made = view(client);
      views.set(client, made);
    }
    return made;
  };
  const methods = new Map<PropertyKey, Method>();
  const namespaces = new Map<PropertyKey, object>();
  const base = router.base;
  // The target is an empty object whose prototype is the client: `instanceof` holds, and no own
  // property of the client (node-redis defines some read-only ones) binds what the trap returns.
  const self: object = new Proxy(Object.create(base) as object, {
    get(_target, name, receiver) {
      if (typeof name === 'symbol' || name.startsWith('_')) return Reflect.get(base, name);
      const known = methods.get(name) ?? namespaces.get(name);
      if (known !== undefined) return known;
      if (STATE.has(name)) return on(router.peek())[name];
      const value = Reflect.get(on(base), name);
      if (typeof value === 'function') {
        const method = routedMethod(router, name, on, receiver);
        methods.set(name, method);
        return method;
      }
      // A module's or a function library's commands (json, ft, ...): routed the same way.
      if (typeof value === 'object' && value !== null && '_self' in value) {
        const namespace = routed(router, (client) => on(client)[name] as Record<string, unknown>);
        namespaces.set(name, namespace);
        return namespace;
      }
      return value;
    },
  });
  if (view === undefined) router.wrapper = self;
  return self;
}

function routedMethod(
  router: Router,
  name: string,
  on: (client: Client) => Record<PropertyKey, unknown>,
  self: unknown,
): Method {
  const base = router.base;
  const wrapper = () => router.wrapper;
  if (EVENTS.has(name)) {
    return (...args) => {
      const result = (base[name] as Method).apply(base, args);
      return result === base ? wrapper() : result;
    };
  }
  if (name === 'connect') return () => router.connect();
  if (ENDS.has(name)) return (...args) => router.end(name, args);
  if (name === 'duplicate') return (overrides) => router.duplicate(overrides as object);
  if (name === 'ref' || name === 'unref') {
    return () => {
      (base[name] as Method).call(base);
      for (const client of router.pools.values()) (client[name] as Method).call(client);
    };
  }
  if (VIEWS.has(name)) {
    return (...args) => routed(router, (client) => (on(client)[name] as Method)(...args) as never);
  }
  const subscribes = SUBSCRIBE.test(name);
  return function picopRoute(...args: unknown[]): unknown {
    let client: Client;
    try {
      client = router.target();
    } catch (err) {
      return failed(on(base)[name], err);
    }
    const target = on(client);
    if (subscribes && typeof args[1] === 'function') {
      args[1] = router.listener(client, args[1] as Method);
    }
    const result = inRouted(target[name] as Method, target, ...args);
    if (result === target) return self;
    // While a PicopGuard runs: a transaction's commands, an iterator's steps are routed work too.
    return routedObject(result);
  };
}

/**
 * node-redis's `createClient`, with one connection per PiCoP environment. The client is the
 * connection of work without an Env-Id (the baseline, or `picop.envId` / `PICOP_ENV_ID`); every
 * command, transaction, script, function, scan iterator and subscription called in a context with
 * another Env-Id runs on that environment's own node-redis client, made on first use, whose socket
 * starts with the environment's PiCoP header on the first connect and on every reconnect.
 * `picop: false` (or `PICOP_DISABLED=1`) gives plain node-redis.
 *
 * @example
 * import { createClient } from '@picop/node-redis';
 * const client = await createClient({ url: 'redis://redis-proxy:6379' }).connect();
 * await client.set('cart:42', '...'); // in the active request's environment
 */
export function createClient<
  M extends RedisModules,
  F extends RedisFunctions,
  S extends RedisScripts,
  RESP extends RespVersions,
  TYPE_MAPPING extends TypeMapping,
>(
  options?: PicopRedisClientOptions<M, F, S, RESP, TYPE_MAPPING>,
): ReturnType<typeof createRedisClient<M, F, S, RESP, TYPE_MAPPING>> {
  const { enabled, picop, library } = splitOptions<
    PicopNodeRedisOptions,
    PicopRedisClientOptions<M, F, S, RESP, TYPE_MAPPING>
  >(options ?? {});
  if (!enabled) return createRedisClient(library);
  const router = new Router(options ?? {}, picop, CLIENTS);
  const client = routed(router);
  ROUTERS.set(client, router);
  return client as ReturnType<typeof createRedisClient<M, F, S, RESP, TYPE_MAPPING>>;
}

const CLIENTS: Kind = {
  make: (options) => createRedisClient(options) as unknown as Client,
  checked: true,
  duplicate: (options) => createClient(options),
};

/**
 * node-redis's `createClientPool`, with one pool per PiCoP environment: the pool itself is the
 * baseline's (connect it as in node-redis); commands, `execute()` and transactions called in a
 * context with another Env-Id run on that environment's own pool, made and connected on first
 * use, whose every client's socket starts with the environment's PiCoP header.
 *
 * @example
 * import { createClientPool } from '@picop/node-redis';
 * const pool = await createClientPool({ url: 'redis://redis-proxy:6379' }, { maximum: 10 }).connect();
 * await pool.execute((client) => client.incr('visits')); // in the active request's environment
 */
export function createClientPool<
  M extends RedisModules,
  F extends RedisFunctions,
  S extends RedisScripts,
  RESP extends RespVersions,
  TYPE_MAPPING extends TypeMapping,
>(
  clientOptions?: PicopRedisClientOptions<M, F, S, RESP, TYPE_MAPPING>,
  poolOptions?: Partial<RedisPoolOptions>,
): ReturnType<typeof createRedisClientPool<M, F, S, RESP, TYPE_MAPPING>> {
  const { enabled, picop, library } = splitOptions<
    PicopNodeRedisOptions,
    PicopRedisClientOptions<M, F, S, RESP, TYPE_MAPPING>
  >(clientOptions ?? {});
  if (!enabled) return createRedisClientPool(library, poolOptions);
  const router = new Router(clientOptions ?? {}, picop, {
    make: (options) => createRedisClientPool(options, poolOptions) as unknown as Client,
    checked: false,
  });
  const pool = routed(router);
  ROUTERS.set(pool, router);
  return pool as ReturnType<typeof createRedisClientPool<M, F, S, RESP, TYPE_MAPPING>>;
}

/**
 * The environments' clients of a client made by {@link createClient} (counters `size`, `created`,
 * `evicted`, `expired` for metrics, and `byEnvId()`); `undefined` for any other object, and with
 * PiCoP off.
 */
export function poolsOf(client: object): PicopPools<RedisClientType> | undefined {
  return ROUTERS.get(client)?.pools as PicopPools<RedisClientType> | undefined;
}

/**
 * Not supported: a cluster's nodes are found at run time, and each would need a proxy of its own.
 * Throws `ERR_PICOP_UNSUPPORTED`; use node-redis's own `createCluster` for work that is the
 * baseline's.
 */
export function createCluster(): never {
  throw new PicopError(
    'ERR_PICOP_UNSUPPORTED',
    `${LABEL} does not support Redis Cluster: put a picop-proxy in front of a standalone Redis per environment, or use node-redis's own createCluster (no PiCoP)`,
  );
}

/**
 * Not supported: Sentinel hands out the master's address at run time, past the proxy. Throws
 * `ERR_PICOP_UNSUPPORTED`.
 */
export function createSentinel(): never {
  throw new PicopError(
    'ERR_PICOP_UNSUPPORTED',
    `${LABEL} does not support Sentinel: put a picop-proxy in front of the master, or use node-redis's own createSentinel (no PiCoP)`,
  );
}
