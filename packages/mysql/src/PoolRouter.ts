import type { EventEmitter } from 'node:events';
import { PicopError } from '@picop/codec';
import { ContextPools, connect } from '@picop/net-wrap';
import mysql from 'mysql2';
import type { Pool as PromisePool } from 'mysql2/promise';
import type { CorePoolInternals } from './internal-types.js';
import type { PicopConnectionOptions, PicopMysqlOptions, PicopPoolOptions } from './types.js';

const POOL_EVENTS = ['connection', 'acquire', 'release', 'enqueue'] as const;

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
    stream: () =>
      connect({
        host,
        port,
        header,
        keepAlive,
        keepAliveInitialDelay: config.keepAliveInitialDelay ?? 0,
      }),
  } as Omit<T, 'picop'>;
}

/**
 * One mysql2 pool per environment, in a bounded `ContextPools`; `acquire()` gives the promise
 * pool of the active context's environment. Pool events are re-emitted on `events` with the
 * Env-Id as an extra argument.
 */
export class PoolRouter {
  readonly #pools: ContextPools<PromisePool>;

  constructor(config: PicopPoolOptions, options: PicopMysqlOptions, events: EventEmitter) {
    addressOf(config); // bad config fails at creation, not at the first query
    this.#pools = new ContextPools<PromisePool>({
      ...options,
      max: options.maxPools,
      create: ({ header, envId }) => {
        const pool = mysql.createPool(withHeaderStream(config, header)).promise();
        for (const event of POOL_EVENTS) {
          pool.on(event as 'connection', (...args: unknown[]) =>
            events.emit(event, ...args, envId),
          );
        }
        return pool;
      },
      destroy: (pool) => pool.end(),
      isIdle: (pool) => {
        const core = pool.pool as unknown as CorePoolInternals;
        return (
          core._allConnections.length === core._freeConnections.length &&
          core._connectionQueue.length === 0
        );
      },
    });
  }

  acquire(): PromisePool {
    return this.#pools.acquire();
  }

  /** The pools, for metrics: `size`, `created`, `evicted`, `expired`. */
  get pools(): ContextPools<PromisePool> {
    return this.#pools;
  }

  end(): Promise<void> {
    return this.#pools.close();
  }
}
