import {
  type Context,
  diag,
  context as otelContext,
  ROOT_CONTEXT,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { type Dialect, PicopError, type PicopFields } from '@picop/codec';
import { fieldsForContext, getEnvId, headerForContext } from '@picop/propagator';
import { defaultConnectionPropagator, inRouted } from '@picop/propagator/internal';
import { type Route, Routes, type RoutesOptions } from '@picop/routes';
import { BoundedPool } from './BoundedPool.js';
import { fallbackEnvId, withFallbackEnvId } from './wrapper-options.js';

/** What {@link ContextPools} passes to `create` for a new context. */
export interface PoolContext {
  /** The pool key. */
  key: string;
  /** The header fields of the context. */
  fields: PicopFields;
  /** The encoded header every socket of this client must start with (empty: send none). */
  header: Buffer;
  /** The Env-Id, if the context has one. */
  envId: string | undefined;
  /**
   * With `routes`: where this environment's connections go, when it has a route; `undefined`:
   * the client's own address.
   */
  route: Route | undefined;
}

/** Options of {@link ContextPools}. */
export interface ContextPoolsOptions<T> {
  /** Makes the client (a pool, a connection) for a context seen for the first time. */
  create(pool: PoolContext): T;
  /** Closes a client: on eviction, idle timeout and `close()`. May return a promise. */
  destroy(client: T): void | Promise<void>;
  /**
   * Whether a client may be closed now (no query in flight, no subscription, no transaction).
   * Busy clients are neither evicted nor closed when idle.
   * @default () => true
   */
  isIdle?(client: T): boolean;
  /**
   * Most environments' clients held at once; past it the least recently used idle one is
   * closed. The baseline's client (work without an Env-Id) is not counted: it is never evicted
   * or refused.
   * @default 32
   */
  max?: number;
  /**
   * Close a client unused for this long (0: never).
   * @default 60000
   */
  idleTimeoutMs?: number;
  /**
   * Env-Id of work that runs with no Env-Id in its context (a consumer, a cron job); `null`:
   * none, whatever `PICOP_ENV_ID` says.
   * @default process.env.PICOP_ENV_ID
   */
  envId?: string | null;
  /** @default `EnvIdPropagator` alone */
  propagator?: TextMapPropagator;
  /** @default 'spec' */
  dialect?: Dialect;
  /**
   * Proxyless routing: each environment's client connects to its route's destination (see
   * `PoolContext.route`). A change of routes closes the clients whose route changed, each once it
   * is idle; the next use opens a new one.
   */
  routes?: RoutesOptions;
  /**
   * Runs once for each new client before it serves (`ready()`), in the root context (so on the
   * baseline's client if it uses the wrapper): creating an isolated environment's database on
   * first use, say. A failure closes the client, so the next use tries again.
   */
  prepare?(client: T, pool: PoolContext): Promise<void>;
  /**
   * Whether clients' connections start with the PiCoP header, when `routes` does not say.
   * @default true
   */
  header?: boolean;
  /**
   * The client of the context without an Env-Id (after `envId`), owned by the caller: `acquire`
   * returns it for that context; it is never counted, evicted, expired or closed here. A wrapper
   * that is itself the baseline client (ioredis's `Redis`, mysql2's `Pool`) passes itself, or,
   * when the pools are made before the library's constructor runs, a function returning it.
   */
  base?: T | (() => T);
}

const NO_HEADER = Buffer.alloc(0);
const sameRoute = (a: Route | undefined, b: Route | undefined) =>
  a === b || (a?.host === b?.host && a?.port === b?.port && a?.header === b?.header);

interface Made {
  envId: string | undefined;
  route: Route | undefined;
}

/**
 * One client (a pool, a connection) per environment (more exactly, per encoded header), created
 * on first use, over a {@link BoundedPool} (at most `max`, idle ones closed): the routing part of
 * every wrapper. It picks the active context's client, follows `routes` (a client whose route
 * changed is retired), and runs `prepare` once per client.
 *
 * @example
 * const pools = new ContextPools({
 *   create: ({ header }) => mysql.createPool({ ...config, stream: () => connect({ ...addr, header }) }),
 *   destroy: (pool) => pool.end(),
 * });
 * const pool = pools.acquire(); // the pool of the active context's Env-Id
 */
export class ContextPools<T> {
  readonly #options: ContextPoolsOptions<T>;
  readonly #pool: BoundedPool<T>;
  readonly #made = new WeakMap<object, Made>();
  readonly #fallbackEnvId: string | undefined;
  // With the default propagator the header is a function of the Env-Id alone, so the Env-Id is the
  // key: no encoding on the hot path. Another propagator's header is the key.
  readonly #keyedByEnvId: boolean;
  readonly #baseKey: string | undefined;
  readonly #routes: Routes | undefined;
  readonly #preparing = new WeakMap<object, Promise<void>>();
  readonly #keys = new WeakMap<Context, [key: string, ctx: Context]>();
  #closed = false;

  constructor(options: ContextPoolsOptions<T>) {
    this.#options = options;
    this.#fallbackEnvId = fallbackEnvId(options.envId);
    this.#keyedByEnvId =
      (options.propagator ?? defaultConnectionPropagator) === defaultConnectionPropagator;
    // The baseline's key (work without an Env-Id, after the fallback): its client is never
    // counted against `max`, evicted or refused, so a flood of environments cannot starve it.
    const reserved = this.#keyOf(withFallbackEnvId(this.#fallbackEnvId, ROOT_CONTEXT));
    this.#pool = new BoundedPool<T>({
      destroy: options.destroy,
      isIdle: options.isIdle,
      max: options.max,
      idleTimeoutMs: options.idleTimeoutMs,
      reserved,
    });
    // Routing itself or isolating, the base client is the baseline's alone: the fallback Env-Id's
    // work needs its own route or isolation, like any environment's.
    const direct = options.routes !== undefined || options.header === false;
    this.#baseKey =
      options.base === undefined
        ? undefined
        : this.#keyOf(direct ? ROOT_CONTEXT : withFallbackEnvId(this.#fallbackEnvId, ROOT_CONTEXT));
    if (options.routes !== undefined) {
      this.#routes = new Routes(options.routes);
      this.#routes.on('change', () => this.#rerouted());
      this.#routes.on('error', (err) =>
        diag.warn(`picop: routes kept as they were: ${err.message}`),
      );
    }
  }

  /** Number of clients held. */
  get size(): number {
    return this.#pool.size;
  }
  /** Clients created so far. */
  get created(): number {
    return this.#pool.created;
  }
  /** Clients closed to stay within `max`. */
  get evicted(): number {
    return this.#pool.evicted;
  }
  /** Clients closed after `idleTimeoutMs` unused. */
  get expired(): number {
    return this.#pool.expired;
  }
  /** The routes (with `routes`): `failures` counts reloads that failed. */
  get routes(): Routes | undefined {
    return this.#routes;
  }

  /**
   * The client for a context (default: the active one), created on first use. A context without
   * Env-Id uses the fallback Env-Id, or else the client without context (empty header).
   * Throws `ERR_PICOP_INVALID_STATE` after `close()`, and `ERR_PICOP_TOO_MANY_CONTEXTS` when `max`
   * environments' clients are all busy (never for the baseline's).
   */
  acquire(ctx: Context = otelContext.active()): T {
    if (this.#closed) {
      throw new PicopError('ERR_PICOP_INVALID_STATE', 'This client is closed (its pools ended)');
    }
    // Contexts are immutable and a request's is reused for each of its calls: its key is read once.
    let known = this.#keys.get(ctx);
    if (known === undefined) {
      const full = withFallbackEnvId(this.#fallbackEnvId, ctx);
      known = [this.#keyOf(full), full];
      this.#keys.set(ctx, known);
    }
    const key = known[0];
    if (key === this.#baseKey) return this.#base();
    return this.#pool.get(key) ?? this.#create(key, known[1]);
  }

  /** The client for a context if one exists, without creating it or counting it as a use. */
  peek(ctx: Context = otelContext.active()): T | undefined {
    const key = this.#keyOf(withFallbackEnvId(this.#fallbackEnvId, ctx));
    return key === this.#baseKey ? this.#base() : this.#pool.peek(key);
  }

  #base(): T {
    const base = this.#options.base;
    return (typeof base === 'function' ? (base as () => T)() : base) as T;
  }

  #keyOf(ctx: Context): string {
    return this.#keyedByEnvId
      ? (getEnvId(ctx) ?? '')
      : headerForContext(ctx, this.#options).toString('latin1');
  }

  /**
   * While `prepare` runs for `client`, a promise of its end (rejected if it failed); else
   * `undefined`: the client is ready.
   */
  ready(client: T): Promise<void> | undefined {
    return this.#preparing.get(client as object);
  }

  /** The clients held (not `base`), in creation order. */
  values(): IterableIterator<T> {
    return this.#pool.values();
  }

  /** Each environment's client held (not `base`), with its Env-Id (`undefined`: no Env-Id). */
  *byEnvId(): IterableIterator<[envId: string | undefined, client: T]> {
    for (const client of this.#pool.values()) {
      yield [this.#made.get(client as object)?.envId, client];
    }
  }

  /** Forgets a client that closed by itself, without destroying it. */
  remove(client: T): boolean {
    return this.#pool.remove(client);
  }

  /** Destroys every client held (not `base`) and waits for them; later `acquire` calls throw. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#routes?.close();
    await this.#pool.clear(true);
  }

  /** Destroys every client held (not `base`) and waits for them; `acquire` creates anew. */
  async clear(): Promise<void> {
    await this.#pool.clear();
  }

  #create(key: string, ctx: Context): T {
    this.#pool.reserve(key);
    const envId = getEnvId(ctx);
    // Throws while routes from an admin URL are unread: never a connection to a guess.
    const route = this.#routes?.get(envId);
    const fields = fieldsForContext(ctx, this.#options.propagator);
    const sendHeader = route?.header ?? this.#routes?.header ?? this.#options.header ?? true;
    const header = sendHeader ? headerForContext(ctx, this.#options) : NO_HEADER;
    const pool: PoolContext = { key, fields, header, envId, route };
    // Its connections (and their reconnects) are routed work: the library's connect spans too.
    const client = inRouted(this.#options.create, this.#options, pool);
    this.#made.set(client as object, { envId, route });
    this.#pool.add(key, client);
    if (this.#options.prepare !== undefined) {
      // Outside the environment: the callback's own queries (CREATE DATABASE on the wrapper
      // itself) run on the baseline's client, not on the one being prepared.
      const prepare = this.#options.prepare;
      const prepared = otelContext
        .with(ROOT_CONTEXT, () => prepare(client, pool))
        .then(
          () => this.#preparing.delete(client as object),
          (err: unknown) => {
            if (this.#pool.peek(key) === client) this.#pool.delete(key);
            throw err;
          },
        );
      prepared.catch(() => {});
      this.#preparing.set(
        client as object,
        prepared.then(() => undefined),
      );
    }
    return client;
  }

  // Routes changed: a client whose route is no longer its own leaves the map now (the next use
  // opens a new one at the new destination) and is closed once its work in flight is done.
  #rerouted(): void {
    for (const [key, client] of [...this.#pool.entries()]) {
      const made = this.#made.get(client as object);
      let route: Route | undefined;
      try {
        route = this.#routes?.get(made?.envId);
      } catch {
        continue;
      }
      if (!sameRoute(route, made?.route)) this.#pool.retire(key);
    }
  }
}
