// Every use of mysql2's private internals, in one place, checked once against the installed
// mysql2 (tested: 3.9 to 3.26, the peer range's oldest and newest): a mysql2 that has moved them
// fails at the first pool with ERR_PICOP_UNSUPPORTED naming its version, never later with a
// TypeError or, worse, a pool judged idle while it is busy.

import mysql from 'mysql2';
import mysqlPromise, { type Pool as PromisePoolType } from 'mysql2/promise';

/** The parts of mysql2's callback Pool internals this package reads (lib/base/pool.js). */
export interface CorePoolInternals {
  _closed: boolean;
  _allConnections: { length: number };
  _freeConnections: { length: number };
  _connectionQueue: { length: number };
}

/** mysql2's callback Pool class: exported at run time, only its instance type is declared. */
export const CorePool = (
  mysql as unknown as { Pool?: new (options: { config: unknown }) => mysql.Pool }
).Pool as new (options: {
  config: unknown;
}) => mysql.Pool;

/** mysql2/promise's PromisePool class (lib/promise/pool.js): exported, not declared. */
export const PromisePool = (
  mysqlPromise as unknown as {
    PromisePool: new (pool: mysql.Pool, promiseImpl?: PromiseConstructor) => PromisePoolType;
  }
).PromisePool;

const core = (pool: mysql.Pool) => pool as unknown as CorePoolInternals;

/** Whether a pool has no connection checked out and no query waiting for one. */
export function poolIsIdle(pool: mysql.Pool): boolean {
  const c = core(pool);
  return c._allConnections.length === c._freeConnections.length && c._connectionQueue.length === 0;
}

/** Whether `end()` was called on a pool. */
export const poolIsClosed = (pool: mysql.Pool): boolean => core(pool)._closed;

/** Whether a pool has queries waiting for a connection. */
export const poolHasWaiters = (pool: mysql.Pool): boolean => core(pool)._connectionQueue.length > 0;

/** The pool a pooled connection belongs to (`null` once mysql2 removed it from its pool). */
export const ownerOf = (connection: mysql.PoolConnection): mysql.Pool | null | undefined =>
  (connection as unknown as { _pool?: mysql.Pool | null })._pool;

// mysql2's PoolConfig class (which validates a config), reached through a pool with the defaults,
// which starts no timer and opens nothing.
let PoolConfig: (new (options: object) => unknown) | undefined;

/** mysql2's own checked pool config for `options`. */
export function poolConfig(options: object): unknown {
  PoolConfig ??= (mysql.createPool({}) as unknown as { config: object }).config.constructor as new (
    options: object,
  ) => unknown;
  return new PoolConfig(options);
}
