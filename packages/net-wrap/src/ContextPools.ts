import {
  type Context,
  diag,
  context as otelContext,
  ROOT_CONTEXT,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { type Dialect, PicopError, type PicopFields } from '@picop/codec';
import {
  defaultConnectionPropagator,
  fieldsForContext,
  getEnvId,
  headerForContext,
} from '@picop/propagator';
import { type Route, Routes, type RoutesOptions } from '@picop/routes';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_POOLS } from './constants.js';
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
   * Env-Id of work that runs with no Env-Id in its context (a consumer, a cron job).
   * @default process.env.PICOP_ENV_ID
   */
  envId?: string;
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
   * that is itself the baseline client (ioredis's `Redis`, mysql2's `Pool`) passes itself.
   */
  base?: T;
}

interface Entry<T> {
  client: T;
  lastUsed: number;
  envId: string | undefined;
  route: Route | undefined;
}

const NO_HEADER = Buffer.alloc(0);
const sameRoute = (a: Route | undefined, b: Route | undefined) =>
  a === b || (a?.host === b?.host && a?.port === b?.port && a?.header === b?.header);

/**
 * A bounded map of per-context clients: one pool, connection or client per Env-Id (more exactly,
 * per encoded header), created on first use. At most `max` clients; idle ones are closed after
 * `idleTimeoutMs`. The building block of the mysql, redis and amqp wrappers.
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
  readonly #entries = new Map<string, Entry<T>>();
  readonly #max: number;
  readonly #idleTimeoutMs: number;
  readonly #fallbackEnvId: string | undefined;
  // With the default propagator the header is a function of the Env-Id alone, so the Env-Id is the
  // key: no encoding on the hot path. Another propagator's header is the key.
  readonly #keyedByEnvId: boolean;
  readonly #baseKey: string | undefined;
  // The baseline's key (work without an Env-Id, after the fallback): its client is never counted
  // against `max`, evicted or refused, so a flood of environments cannot starve it.
  readonly #reservedKey: string;
  // Runs only while clients are held: a wrapper with none leaves no timer behind.
  #sweeper: NodeJS.Timeout | undefined;
  readonly #routes: Routes | undefined;
  // Clients whose route changed while busy: closed once idle.
  readonly #retiring = new Set<T>();
  readonly #preparing = new WeakMap<object, Promise<void>>();
  readonly #keys = new WeakMap<Context, [key: string, ctx: Context]>();
  #retirer: NodeJS.Timeout | undefined;
  readonly #closing: Array<Promise<void>> = [];
  #closed = false;
  #created = 0;
  #evicted = 0;
  #expired = 0;

  constructor(options: ContextPoolsOptions<T>) {
    this.#options = options;
    this.#max = options.max ?? DEFAULT_MAX_POOLS;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (!Number.isInteger(this.#max) || this.#max < 1) {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `\`max\` must be a positive integer, got ${this.#max}`,
      );
    }
    if (!(this.#idleTimeoutMs >= 0)) {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `\`idleTimeoutMs\` must be >= 0, got ${this.#idleTimeoutMs}`,
      );
    }
    this.#fallbackEnvId = fallbackEnvId(options.envId);
    this.#keyedByEnvId =
      (options.propagator ?? defaultConnectionPropagator) === defaultConnectionPropagator;
    if (options.routes !== undefined) {
      this.#routes = new Routes(options.routes);
      this.#routes.on('change', () => this.#rerouted());
      this.#routes.on('error', (err) =>
        diag.warn(`picop: routes kept as they were: ${err.message}`),
      );
    }
    // Routing itself or isolating, the base client is the baseline's alone: the fallback Env-Id's
    // work needs its own route or isolation, like any environment's.
    const direct = options.routes !== undefined || options.header === false;
    this.#baseKey =
      options.base === undefined
        ? undefined
        : this.#keyOf(direct ? ROOT_CONTEXT : withFallbackEnvId(this.#fallbackEnvId, ROOT_CONTEXT));
    this.#reservedKey = this.#keyOf(withFallbackEnvId(this.#fallbackEnvId, ROOT_CONTEXT));
  }

  /** Number of clients held. */
  get size(): number {
    return this.#entries.size;
  }
  /** Clients created so far. */
  get created(): number {
    return this.#created;
  }
  /** Clients closed to stay within `max`. */
  get evicted(): number {
    return this.#evicted;
  }
  /** Clients closed after `idleTimeoutMs` unused. */
  get expired(): number {
    return this.#expired;
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
    if (this.#closed) throw new PicopError('ERR_PICOP_INVALID_STATE', 'ContextPools is closed');
    // Contexts are immutable and a request's is reused for each of its calls: its key is read once.
    let known = this.#keys.get(ctx);
    if (known === undefined) {
      const full = withFallbackEnvId(this.#fallbackEnvId, ctx);
      known = [this.#keyOf(full), full];
      this.#keys.set(ctx, known);
    }
    const key = known[0];
    ctx = known[1];
    if (key === this.#baseKey) return this.#options.base as T;
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      entry.lastUsed = performance.now();
      return entry.client;
    }
    return this.#create(key, ctx);
  }

  /** The client for a context if one exists, without creating it or counting it as a use. */
  peek(ctx: Context = otelContext.active()): T | undefined {
    const key = this.#keyOf(withFallbackEnvId(this.#fallbackEnvId, ctx));
    return key === this.#baseKey ? this.#options.base : this.#entries.get(key)?.client;
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
  *values(): IterableIterator<T> {
    for (const entry of this.#entries.values()) yield entry.client;
  }

  /** Forgets a client that closed by itself, without destroying it. */
  remove(client: T): boolean {
    for (const [key, entry] of this.#entries) {
      if (entry.client === client) {
        this.#entries.delete(key);
        this.#stopSweeperIfEmpty();
        return true;
      }
    }
    return false;
  }

  /** Destroys every client held (not `base`) and waits for them; later `acquire` calls throw. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#routes?.close();
    await this.clear();
    for (const client of this.#retiring) this.#retire(client, true);
    await Promise.all(this.#closing);
  }

  /** Destroys every client held (not `base`) and waits for them; `acquire` creates anew. */
  async clear(): Promise<void> {
    for (const [key, entry] of this.#entries) this.#destroy(key, entry);
    await Promise.all(this.#closing);
  }

  #create(key: string, ctx: Context): T {
    const counted = this.#entries.size - (this.#entries.has(this.#reservedKey) ? 1 : 0);
    if (key !== this.#reservedKey && counted >= this.#max && !this.#evictOne()) {
      throw new PicopError(
        'ERR_PICOP_TOO_MANY_CONTEXTS',
        `All ${this.#max} per-context clients are busy; a client for a new context cannot be opened: raise \`max\``,
      );
    }
    const envId = getEnvId(ctx);
    // Throws while routes from an admin URL are unread: never a connection to a guess.
    const route = this.#routes?.get(envId);
    const fields = fieldsForContext(ctx, this.#options.propagator);
    const sendHeader = route?.header ?? this.#routes?.header ?? this.#options.header ?? true;
    const header = sendHeader ? headerForContext(ctx, this.#options) : NO_HEADER;
    const pool: PoolContext = { key, fields, header, envId, route };
    const client = this.#options.create(pool);
    const entry: Entry<T> = { client, lastUsed: performance.now(), envId, route };
    this.#entries.set(key, entry);
    if (this.#options.prepare !== undefined) {
      // Outside the environment: the callback's own queries (CREATE DATABASE on the wrapper
      // itself) run on the baseline's client, not on the one being prepared.
      const prepare = this.#options.prepare;
      const prepared = otelContext
        .with(ROOT_CONTEXT, () => prepare(client, pool))
        .then(
          () => this.#preparing.delete(client as object),
          (err: unknown) => {
            this.#destroy(key, entry);
            throw err;
          },
        );
      prepared.catch(() => {});
      this.#preparing.set(
        client as object,
        prepared.then(() => undefined),
      );
    }
    this.#created++;
    if (this.#sweeper === undefined && this.#idleTimeoutMs > 0) {
      this.#sweeper = setInterval(
        () => this.#sweep(),
        Math.max(10, Math.min(this.#idleTimeoutMs / 2, 30_000)),
      );
      this.#sweeper.unref();
    }
    return client;
  }

  #isIdle(client: T): boolean {
    try {
      return this.#options.isIdle?.(client) ?? true;
    } catch (err) {
      diag.error('picop: ContextPools isIdle() threw; client kept', err);
      return false;
    }
  }

  #evictOne(): boolean {
    let oldest: [string, Entry<T>] | undefined;
    for (const item of this.#entries) {
      if (
        item[0] !== this.#reservedKey &&
        (oldest === undefined || item[1].lastUsed < oldest[1].lastUsed) &&
        this.#isIdle(item[1].client)
      )
        oldest = item;
    }
    if (oldest === undefined) return false;
    this.#destroy(...oldest);
    this.#evicted++;
    return true;
  }

  #sweep(): void {
    const cutoff = performance.now() - this.#idleTimeoutMs;
    for (const [key, entry] of this.#entries) {
      if (entry.lastUsed <= cutoff && this.#isIdle(entry.client)) {
        this.#destroy(key, entry);
        this.#expired++;
      }
    }
  }

  #destroy(key: string, entry: Entry<T>): void {
    if (this.#entries.get(key)?.client === entry.client) this.#entries.delete(key);
    this.#stopSweeperIfEmpty();
    const done = (async () => {
      try {
        await this.#options.destroy(entry.client);
      } catch (err) {
        diag.error(`picop: closing the client of context ${JSON.stringify(key)} failed`, err);
      }
    })();
    this.#closing.push(done);
    done.finally(() => this.#closing.splice(this.#closing.indexOf(done), 1));
  }

  // Routes changed: a client whose route is no longer its own leaves the map now (the next use
  // opens a new one at the new destination) and is closed once its work in flight is done.
  #rerouted(): void {
    for (const [key, entry] of this.#entries) {
      let route: Route | undefined;
      try {
        route = this.#routes?.get(entry.envId);
      } catch {
        continue;
      }
      if (sameRoute(route, entry.route)) continue;
      this.#entries.delete(key);
      this.#retire(entry.client, false);
    }
    this.#stopSweeperIfEmpty();
  }

  #retire(client: T, now: boolean): void {
    this.#retiring.delete(client);
    if (now || this.#isIdle(client)) {
      this.#destroy('', { client, lastUsed: 0, envId: undefined, route: undefined });
      return;
    }
    this.#retiring.add(client);
    this.#retirer ??= setInterval(() => {
      for (const c of this.#retiring) if (this.#isIdle(c)) this.#retire(c, true);
      if (this.#retiring.size === 0) {
        clearInterval(this.#retirer);
        this.#retirer = undefined;
      }
    }, 50).unref();
  }

  #stopSweeperIfEmpty(): void {
    if (this.#entries.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
