import type { Socket } from 'node:net';
import { context as otelContext, ROOT_CONTEXT } from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import { type ContextPools, connect, type PicopPools } from '@picop/net-wrap';
import {
  baseHeader,
  coverLibrary,
  explainRefusal,
  forwardEvents,
  isolationName,
  routeMethods,
  routeOr,
  splitOptions,
  storeName,
  wrapperPools,
} from '@picop/net-wrap/internal';
import mysql, { type PoolOptions } from 'mysql2';
import { checkMysql2 } from './mysql2-check.js';
import {
  CorePool,
  ownerOf,
  PromisePool,
  poolConfig,
  poolHasWaiters,
  poolIsClosed,
  poolIsIdle,
} from './mysql2-internals.js';
import type {
  MysqlIsolation,
  PicopConnectionOptions,
  PicopMysqlOptions,
  PicopPoolOptions,
} from './types.js';

// PicopGuard's start-up check: mysql2 is routed in this process.
coverLibrary('mysql2');

const LABEL = '@picop/mysql';
const POOL_EVENTS = ['connection', 'acquire', 'release', 'enqueue'] as const;

/**
 * The database of environment `envId` under `isolate`, as MySQL keeps it: at most 64 characters,
 * no `/`, `\\`, `.`, backquote or trailing space, and lower case (lower_case_table_names folds it
 * on some servers). Else `ERR_PICOP_INVALID_ARG`.
 */
export function isolatedDatabase(isolate: MysqlIsolation, envId: string): string | undefined {
  const database = isolate.database(isolationName(envId));
  return database === undefined
    ? undefined
    : storeName(database, envId, {
        kind: 'MySQL database',
        option: 'isolate.database',
        maxChars: 64,
        forbidden: /[/\\.`\u0000]|\s$/,
        foldsCase: true,
      });
}

/**
 * What MariaDB sends, after its greeting, to a connection that starts with what it takes for a
 * PROXY protocol header from a host it does not trust (the PiCoP signature begins like one).
 */
function isProxyHeaderRefusal(first: Buffer): boolean {
  return first.includes('Proxy header is not accepted');
}

/** Host and port mysql2 would connect to, from the config or its `uri`. */
function addressOf(config: PicopConnectionOptions): { host: string; port: number } {
  if (config.socketPath !== undefined) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      '@picop/mysql connects over TCP to a PiCoP proxy: `socketPath` cannot carry the header; set `picop: false` to use it',
    );
  }
  if (config.stream !== undefined) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      '@picop/mysql makes its own `stream`; set `picop: false` to pass yours',
    );
  }
  const uri = config.uri === undefined ? undefined : new URL(config.uri);
  return {
    host: config.host ?? uri?.hostname ?? 'localhost',
    port: config.port ?? (uri?.port ? Number(uri.port) : 3306),
  };
}

/**
 * mysql2's `stream` option for one environment of {@link perEnvironment} (from `@picop/net-wrap`):
 * each connection to `address` (a picop-proxy, or the environment's route) starts with its header.
 * For a data layer that makes its own mysql2 connections (knex, Sequelize), one instance per
 * environment:
 *
 * @example
 * const db = perEnvironment(
 *   (env) => knex({ client: 'mysql2', connection: { user, database, stream: mysqlStream(env, proxy) } }),
 *   { destroy: (k) => k.destroy() },
 * );
 */
export function mysqlStream(
  environment: { header: Buffer; route?: { host: string; port: number } | undefined },
  address: { host: string; port?: number },
): () => Socket {
  const to = environment.route ?? { host: address.host, port: address.port ?? 3306 };
  return () => {
    const socket = connect({ ...to, header: environment.header, keepAliveInitialDelay: 0 });
    explainRefusal(socket, environment.header, LABEL, isProxyHeaderRefusal);
    return socket;
  };
}

/** mysql2 config whose every connection starts with `header`, keeping mysql2's socket settings. */
export function withHeaderStream<T extends PicopConnectionOptions>(
  config: T,
  header: Buffer,
): Omit<T, 'picop'> {
  const { picop: _picop, ...mysqlConfig } = config;
  const { host, port } = addressOf(config);
  const keepAlive = config.enableKeepAlive ?? true;
  return {
    ...mysqlConfig,
    // mysql2 calls this synchronously for every new connection, refills after errors included.
    stream: () => {
      const socket = connect({
        host,
        port,
        header,
        keepAlive,
        keepAliveInitialDelay: config.keepAliveInitialDelay ?? 0,
      });
      // MySQL's server speaks first: a hang-up before its greeting, or MariaDB's refusal of what
      // it reads as a PROXY protocol header, means no picop-proxy is there.
      explainRefusal(socket, header, LABEL, isProxyHeaderRefusal);
      return socket;
    },
  } as Omit<T, 'picop'>;
}

/** The per-environment pools of a {@link PicopCallbackPool}: mysql2 pools, events forwarded. */
function environmentPools(
  picop: PicopMysqlOptions,
  library: PoolOptions,
  wrapper: () => PicopCallbackPool,
): ContextPools<mysql.Pool> {
  const { isolate } = picop;
  const databaseOf = (envId: string) =>
    isolate === undefined ? undefined : isolatedDatabase(isolate, envId);
  return wrapperPools<mysql.Pool>(picop, LABEL, {
    base: wrapper,
    create: ({ header, envId, route }) => {
      const own = {
        ...library,
        ...(route && { host: route.host, port: route.port }),
        ...(isolate && envId !== undefined && { database: databaseOf(envId) ?? library.database }),
      };
      const pool = mysql.createPool(withHeaderStream(own, header));
      forwardEvents(pool, wrapper(), POOL_EVENTS, envId, LABEL);
      pool.on('connection', (connection) => routeMethods(connection, ROUTED_METHODS));
      return pool;
    },
    destroy: (pool) => new Promise<void>((resolve) => pool.end(() => resolve())),
    ...(isolate?.create && {
      prepare: async (_pool, { envId }) => {
        const database = envId === undefined ? undefined : databaseOf(envId);
        if (envId !== undefined && database !== undefined)
          await isolate.create?.({ envId, database });
      },
    }),
    isIdle: poolIsIdle,
  });
}

/** The methods of mysql2's connections that send a query (and start its instrumentation's span). */
export const ROUTED_METHODS = ['query', 'execute'];

/**
 * mysql2's callback `Pool`, with one pool per environment: this object is the pool of work without
 * an Env-Id (the baseline, or the `envId` fallback), so its config, state, events and errors are
 * mysql2's own; `getConnection`, and so `query` and `execute`, take a connection of the active
 * context's environment's pool, whose connections start with that environment's PiCoP header.
 * Events of the other environments' pools are re-emitted here with the Env-Id appended. With
 * `picop: false` (or `PICOP_DISABLED=1`) it is mysql2's pool, unchanged.
 */
export class PicopCallbackPool extends CorePool {
  readonly #pools: ContextPools<mysql.Pool> | undefined;

  constructor(config: PicopPoolOptions | string) {
    const options: PicopPoolOptions = typeof config === 'string' ? { uri: config } : config;
    const { enabled, picop, library } = splitOptions<PicopMysqlOptions, PicopPoolOptions>(options);
    checkMysql2();
    // Checked and made before mysql2's pool: a bad option opens nothing.
    const pools = enabled ? environmentPools(picop, library, () => this) : undefined;
    super({ config: poolConfig(enabled ? withHeaderStream(library, baseHeader(picop)) : library) });
    this.#pools = pools;
  }

  /**
   * The pools of the environments other than the baseline (this one): counters `size`,
   * `created`, `evicted`, `expired` for metrics, and `byEnvId()`; `undefined` with PiCoP off.
   */
  get pools(): PicopPools<mysql.Pool> | undefined {
    return this.#pools;
  }

  /** A connection of the active environment's pool; `release()` returns it there. */
  override getConnection(callback: Parameters<mysql.Pool['getConnection']>[0]): void {
    // A closed pool answers as mysql2's does ("Pool is closed.").
    const closed = poolIsClosed(this);
    const pool = closed ? this : routeOr(() => this.#pools?.acquire() ?? this, callback);
    if (pool === undefined) return;
    const ready = pool === this ? undefined : this.#pools?.ready(pool);
    if (pool === this) super.getConnection(callback);
    else if (ready === undefined) pool.getConnection(callback);
    else
      ready.then(
        () => pool.getConnection(callback),
        (err: NodeJS.ErrnoException) => callback(err, undefined as never),
      );
  }

  /** Returns a connection to the pool it came from: another environment's never joins this one. */
  override releaseConnection(connection: mysql.PoolConnection): void {
    const owner = ownerOf(connection);
    // No owner: a connection mysql2 removed from this pool (it serves a waiter here).
    if (this.#pools === undefined || owner === this || !owner) this.#releaseHere(connection);
    else owner.releaseConnection(connection);
  }

  #releaseHere(connection: mysql.PoolConnection): void {
    if (!poolHasWaiters(this)) {
      super.releaseConnection(connection);
      return;
    }
    // mysql2 may hand a waiter of this pool a new connection through getConnection(): in no
    // request's context, so that it stays this pool's, whoever released.
    otelContext.with(ROOT_CONTEXT, () => super.releaseConnection(connection));
  }

  /** Ends this pool and every environment's pool. */
  override end(callback?: (err: NodeJS.ErrnoException | null) => void): void {
    const others = this.#pools?.close();
    super.end((err: NodeJS.ErrnoException | null) => {
      void Promise.resolve(others).then(() => {
        if (callback) callback(err ?? null);
        else if (err) throw err;
      });
    });
  }

  /** The promise API over the same pools, as mysql2's `pool.promise()`. */
  override promise(promiseImpl?: PromiseConstructor): PicopPool {
    return new PicopPool(this, promiseImpl);
  }
}

/**
 * mysql2's promise `Pool` over a {@link PicopCallbackPool}: what `createPool` from `@picop/mysql`
 * returns. Every method is mysql2's own.
 */
export class PicopPool extends PromisePool {
  /** The per-environment pools of the callback pool below (`undefined` with PiCoP off). */
  get pools(): PicopPools<mysql.Pool> | undefined {
    return (this.pool as PicopCallbackPool).pools;
  }
}
