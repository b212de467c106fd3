import net from 'node:net';
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import type { ContextPools, PicopPools } from '@picop/net-wrap';
import {
  baseHeader,
  coverLibrary,
  explainRefusal,
  fallbackEnvId,
  forwardEvents,
  headerOf,
  inRouted,
  isolationName,
  type PicopWrapperOptions,
  perEnvironmentOnly,
  promisify,
  routeMethods,
  routeOnce,
  routeOr,
  splitOptions,
  storeName,
  withFallbackEnvId,
  wrapperPools,
} from '@picop/net-wrap/internal';
import { getEnvId } from '@picop/propagator';
import pg from 'pg';

/** The `picop` options of {@link Pool} and {@link Client}. */
export interface PicopPgOptions extends PicopWrapperOptions {
  /** Logical isolation on the client's own PostgreSQL: see {@link PgIsolation}. */
  isolate?: PgIsolation;
}

/**
 * Each environment in a database or a schema of its own on the one PostgreSQL; the baseline keeps
 * the config's. Env-Ids are checked before they become names (letters, digits, `_`, `-`).
 */
export interface PgIsolation {
  /** The database of an environment; `undefined`: the baseline's. */
  database?: (envId: string) => string | undefined;
  /**
   * The schema of an environment: its connections start with `search_path` set to it (quoted);
   * `undefined`: the baseline's.
   */
  schema?: (envId: string) => string | undefined;
  /**
   * Runs before an environment's pool serves its first query, e.g. `CREATE SCHEMA IF NOT EXISTS`
   * on the baseline pool, or `CREATE DATABASE ... TEMPLATE shop`; never implicit. A failure fails
   * that query, and the next use tries again.
   */
  create?: (environment: { envId: string; database?: string; schema?: string }) => Promise<void>;
}

/** The connection settings of an isolated environment: its database, its `search_path`. */
function settingsOf(
  config: pg.ClientConfig,
  environment: { database?: string; schema?: string } | undefined,
): pg.ClientConfig {
  return {
    ...(environment?.database !== undefined && { database: environment.database }),
    ...(environment?.schema !== undefined && {
      options: `${config.options ?? ''} -c search_path="${environment.schema}"`.trim(),
    }),
  };
}

/** The config of environment `envId` under `isolate`. */
function isolated(isolate: PgIsolation, envId: string) {
  const name = isolationName(envId);
  // PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1) and folds unquoted ones.
  const rules = { maxBytes: 63, forbidden: /["\\\s\u0000]/, foldsCase: true };
  const database = isolate.database?.(name);
  const schema = isolate.schema?.(name);
  return {
    envId,
    database:
      database === undefined
        ? undefined
        : storeName(database, envId, {
            ...rules,
            kind: 'PostgreSQL database',
            option: 'isolate.database',
          }),
    schema:
      schema === undefined
        ? undefined
        : storeName(schema, envId, {
            ...rules,
            kind: 'PostgreSQL schema',
            option: 'isolate.schema',
          }),
  };
}

/** node-postgres's pool config plus `picop` (`false`, or `PICOP_DISABLED=1`: plain `pg`). */
export interface PoolConfig extends pg.PoolConfig {
  picop?: PicopPgOptions | false;
}

/** node-postgres's client config plus `picop`. */
export interface ClientConfig extends pg.ClientConfig {
  picop?: PicopPgOptions | false;
}

/**
 * node-postgres's `stream` option for one environment of {@link perEnvironment} (from
 * `@picop/net-wrap`): each connection starts with its header. For a data layer that makes its own
 * `pg` connections (knex, pg-promise), one instance per environment:
 *
 * @example
 * const db = perEnvironment(
 *   (env) => knex({ client: 'pg', connection: { host: 'postgres-proxy', stream: pgStream(env) } }),
 *   { destroy: (k) => k.destroy() },
 * );
 */
export function pgStream(environment: { header: Buffer }): () => net.Socket {
  return streamOf(environment.header);
}

/**
 * node-postgres's `stream` option: an unconnected socket (node-postgres connects it) that sends
 * `header` first. The listener is added before node-postgres's own 'connect' listener, which writes
 * the startup message or, with `ssl`, the SSLRequest that starts TLS.
 */
function streamOf(header: Buffer): () => net.Socket {
  return () => {
    const socket = new net.Socket();
    if (header.length > 0) socket.once('connect', () => socket.write(header));
    // PostgreSQL answers every startup message: an end before any byte is not its answer.
    explainRefusal(socket, header, LABEL);
    return socket;
  };
}

/**
 * The database and schema of an environment under `isolate`, checked as {@link Pool} checks
 * them (the baseline, without Env-Id, gets neither): for a data layer made per environment with
 * `perEnvironment()` that isolates environments on one PostgreSQL (Prisma's `schema`, knex's
 * `searchPath`, Sequelize's `schema`). `isolate.create` is not run: create them in your set-up.
 *
 * @example
 * const { schema } = pgIsolation(env, { schema: (envId) => `env_${envId}` });
 * new PrismaClient({ adapter: new PrismaPg(config, { schema }) });
 */
export function pgIsolation(
  environment: { envId: string | undefined },
  isolate: Omit<PgIsolation, 'create'>,
): { database?: string; schema?: string } {
  if (environment.envId === undefined) return {};
  const { database, schema } = isolated(isolate, environment.envId);
  return { ...(database !== undefined && { database }), ...(schema !== undefined && { schema }) };
}

// PicopGuard's start-up check: pg is routed in this process.
coverLibrary('pg');

const LABEL = '@picop/pg';
const EVENTS = ['connect', 'acquire', 'release', 'remove', 'error'];

/**
 * PostgreSQL's errors when an isolated environment's schema is missing (3F000: no schema to
 * create in; 42P01: no such relation on its search_path) say neither the environment nor the
 * option: the hint says both, on the error node-postgres hands to the query (read before it).
 */
function hintIsolation(client: pg.PoolClient, envId: string, schema: string): void {
  const connection = (client as unknown as { connection: import('node:events').EventEmitter })
    .connection;
  connection.prependListener('errorMessage', (msg: { code?: string; message: string }) => {
    if (msg.code !== '3F000' && msg.code !== '42P01') return;
    msg.message += ` (picop: ${envId}'s connections use the schema "${schema}" (isolate.schema); if it or its tables do not exist yet, create them, or give isolate.create, which runs once before the environment's first query)`;
  });
}

/** The per-environment pools of a {@link Pool}: node-postgres pools, events forwarded. */
function environmentPools(
  picop: PicopPgOptions,
  library: pg.PoolConfig,
  wrapper: () => Pool,
): ContextPools<pg.Pool> {
  const { isolate } = picop;
  const environment = (envId: string | undefined) =>
    isolate === undefined || envId === undefined ? undefined : isolated(isolate, envId);
  return wrapperPools<pg.Pool>(picop, LABEL, {
    base: wrapper,
    create: ({ header, envId, route }) => {
      const pool = new pg.Pool({
        ...library,
        ...(route && { host: route.host, port: route.port }),
        ...settingsOf(library, environment(envId)),
        stream: streamOf(header),
      });
      forwardEvents(pool, wrapper(), EVENTS, envId, LABEL);
      pool.on('connect', (client) => routeMethods(client, ['query']));
      const schema = environment(envId)?.schema;
      if (envId !== undefined && schema !== undefined) {
        pool.on('connect', (client) => hintIsolation(client, envId, schema));
      }
      return pool;
    },
    destroy: (pool) => pool.end(),
    ...(isolate?.create && {
      prepare: async (_pool, { envId }) => {
        const own = environment(envId);
        if (own?.database !== undefined || own?.schema !== undefined) await isolate.create?.(own);
      },
    }),
    isIdle: (pool) => pool.idleCount === pool.totalCount && pool.waitingCount === 0,
  });
}

/**
 * node-postgres's `Pool`, with one pool per environment. This object is the pool of work without
 * an Env-Id (or with `picop.envId`); `connect()`, `query()` (text, config objects, named
 * statements) and everything built on them take a client from the pool of the environment
 * active at the call, and `release()` returns it there. Every connection starts with its
 * environment's PiCoP header. Events of the environments' pools are re-emitted here, with the
 * Env-Id appended.
 *
 * @example
 * const pool = new Pool({ host: 'postgres-proxy', user: 'app', database: 'shop' });
 * await pool.query('INSERT INTO orders (id) VALUES ($1)', [id]); // the request's environment
 */
export class Pool extends pg.Pool {
  readonly #pools: ContextPools<pg.Pool> | undefined;

  constructor(config: PoolConfig = {}) {
    const { enabled, picop, library } = splitOptions<PicopPgOptions, PoolConfig>(config);
    // Checked and made before node-postgres's pool: a bad option opens nothing.
    const pools = enabled ? environmentPools(picop, library, () => this) : undefined;
    super(enabled ? { ...library, stream: streamOf(baseHeader(picop)) } : library);
    this.#pools = pools;
  }

  /**
   * The pools of the environments other than the baseline (this one): counters `size`,
   * `created`, `evicted`, `expired`, and `byEnvId()` for each environment's `totalCount` and
   * the rest; `undefined` with PiCoP off. (Before 0.2.0: the number that is now `pools.size`.)
   */
  get pools(): PicopPools<pg.Pool> | undefined {
    return this.#pools;
  }

  // node-postgres's counters (getters on its prototype; its types call them properties), over
  // every environment's pool and this one's: a health check or a metrics exporter sees all the
  // clients this object holds. Set here, not declared, so that their types stay node-postgres's.
  static {
    for (const name of ['totalCount', 'idleCount', 'waitingCount', 'expiredCount'] as const) {
      let proto: object | null = pg.Pool.prototype;
      let own: (() => unknown) | undefined;
      while (proto !== null && own === undefined) {
        own = Object.getOwnPropertyDescriptor(proto, name)?.get;
        proto = Object.getPrototypeOf(proto);
      }
      if (own === undefined) continue;
      Object.defineProperty(Pool.prototype, name, {
        get(this: Pool): number {
          let total = own.call(this) as number;
          // node-postgres may read a counter before this class's fields exist.
          if (!(#pools in this) || this.#pools === undefined) return total;
          for (const pool of this.#pools.values()) total += own.call(pool) as number;
          return total;
        },
        configurable: true,
      });
    }
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(
    callback: (
      err: Error | undefined,
      client: pg.PoolClient | undefined,
      done: (release?: unknown) => void,
    ) => void,
  ): void;
  override connect(
    callback?: Parameters<pg.Pool['connect']>[0],
  ): Promise<pg.PoolClient> | undefined {
    const { callback: done, result } = promisify<pg.PoolClient>(callback);
    // As node-postgres reports a failed connect: in the callback, or as a rejection.
    const pool = routeOr(
      () => this.#pools?.acquire(context.active()) ?? this,
      done,
      undefined,
      () => {},
    );
    if (pool === undefined) return result;
    const ready = pool === this ? undefined : this.#pools?.ready(pool);
    const connect = pool === this ? super.connect.bind(this) : pool.connect.bind(pool);
    if (ready === undefined) inRouted(connect, undefined, done);
    else
      ready.then(
        () => inRouted(connect, undefined, done),
        (err: Error) => done(err, undefined, () => {}),
      );
    return result;
  }

  /**
   * node-postgres's `on`, which refuses Prisma's adapter (`new PrismaPg(pool)`, at its first
   * query): Prisma batches the queries of several requests into one (same-tick `findUnique`
   * calls, `$transaction([...])`), which would run in the first request's environment. Prisma
   * takes one client per environment: `perEnvironment()`, as in this package's README.
   */
  override on<K extends 'error' | 'release' | 'connect' | 'acquire' | 'remove'>(
    event: K,
    listener: K extends 'error' | 'release'
      ? (err: Error, client: pg.PoolClient) => void
      : (client: pg.PoolClient) => void,
  ): this {
    // @prisma/adapter-pg (6 and 7) listens for its idle clients' errors with this function.
    if (event === 'error' && listener.name === 'onIdleClientError' && this.#pools !== undefined) {
      throw perEnvironmentOnly(
        LABEL,
        'Prisma',
        "it batches the queries of several requests into one (same-tick findUnique calls, $transaction([...])), which runs in the first request's environment",
        "PrismaPg's own pool, its `stream` from pgStream(env)",
      );
    }
    return super.on(event, listener);
  }

  /** Ends every environment's pool, then this one. */
  override end(): Promise<void>;
  override end(callback: () => void): void;
  override end(callback?: () => void): Promise<void> | undefined {
    const { callback: done, result } = promisify<void>(callback);
    // node-postgres's own end() first, so that `ending` is set at once (a second end() is
    // refused as node-postgres refuses it), then every environment's pool.
    const own = super.end();
    Promise.all([own, this.#pools?.close()]).then(
      () => done(undefined),
      (err: Error) => done(err),
    );
    return result;
  }
}

// The build renames a class that refers to itself (`_Pool`): it keeps node-postgres's name.
Object.defineProperty(Pool, 'name', { value: 'Pool' });

/**
 * node-postgres's `Client`: one connection, in the environment active when it is created (or
 * `picop.envId`). For `LISTEN`, create it inside the request or job whose environment it serves.
 * With `routes` (a `table` or a `file`, read once) it connects to that environment's route; with
 * `isolate`, to its database or schema, `create` running before the connection opens.
 *
 * @example
 * const client = await withEnvId('feature-1', async () => {
 *   const c = new Client({ host: 'postgres-proxy' });
 *   await c.connect();
 *   return c;
 * });
 */
export class Client extends pg.Client {
  readonly #prepare: (() => Promise<void>) | undefined;

  constructor(config: ClientConfig | string = {}) {
    const options = typeof config === 'string' ? { connectionString: config } : config;
    const { enabled, picop, library } = splitOptions<PicopPgOptions, ClientConfig>(options);
    // Sequelize 6 (`dialectModule: @picop/pg`) makes each connection with its bound type parser,
    // and pools them across requests.
    if (enabled && library.types?.getTypeParser.name === 'bound getTypeParser') {
      throw perEnvironmentOnly(
        LABEL,
        'Sequelize',
        "it keeps the connections it makes in a pool of its own, and one made in a request's environment would serve later requests of any environment",
        'plain pg and `dialectOptions: { stream: pgStream(env) }`',
      );
    }
    const ctx = withFallbackEnvId(fallbackEnvId(picop.envId), context.active());
    const envId = getEnvId(ctx);
    let own: ClientConfig = library;
    let header = headerOf({ context: ctx, propagator: picop.propagator, dialect: picop.dialect });
    let environment: ReturnType<typeof isolated> | undefined;
    if (enabled && (picop.routes !== undefined || picop.isolate !== undefined)) {
      const { route, header: sends } = routeOnce(picop, envId, '@picop/pg Client');
      environment =
        picop.isolate === undefined || envId === undefined
          ? undefined
          : isolated(picop.isolate, envId);
      own = {
        ...library,
        ...(route && { host: route.host, port: route.port }),
        ...settingsOf(library, environment),
      };
      if (!sends) header = Buffer.alloc(0);
    }
    super(enabled ? { ...own, stream: streamOf(header) } : library);
    if (enabled) routeMethods(this, ['query', 'connect']);
    const create = picop.isolate?.create;
    const target = environment;
    this.#prepare =
      create !== undefined && (target?.database !== undefined || target?.schema !== undefined)
        ? () => context.with(ROOT_CONTEXT, () => create(target))
        : undefined;
  }

  /** Connects, after the isolated environment's `create` when there is one. */
  override connect(): Promise<pg.Client>;
  override connect(
    callback: ((err: Error) => void) | ((err: null, client: pg.Client) => void),
  ): void;
  override connect(
    callback?: ((err: Error) => void) | ((err: null, client: pg.Client) => void),
  ): Promise<pg.Client> | undefined {
    const prepare = this.#prepare;
    if (prepare === undefined) {
      if (callback === undefined) return super.connect();
      super.connect(callback);
      return undefined;
    }
    const { callback: done, result } = promisify<pg.Client>(callback);
    prepare()
      .then(() => super.connect())
      .then(
        () => done(null, this),
        (err: Error) => done(err),
      );
    return result;
  }
}

// The rest of node-postgres, as it is: with Pool and Client above, this module stands wherever
// `pg` is required or passed (a driver module option, `import pg from '@picop/pg'`).
export {
  Connection,
  DatabaseError,
  defaults,
  escapeIdentifier,
  escapeLiteral,
  Query,
  Result,
  TypeOverrides,
  types,
} from 'pg';

/** The module as one object, as `pg`'s default export: `import pg from '@picop/pg'`. */
export default {
  Client,
  Pool,
  Connection: pg.Connection,
  DatabaseError: pg.DatabaseError,
  defaults: pg.defaults,
  escapeIdentifier: pg.escapeIdentifier,
  escapeLiteral: pg.escapeLiteral,
  Query: pg.Query,
  Result: pg.Result,
  TypeOverrides: pg.TypeOverrides,
  types: pg.types,
};
