import type mysql from 'mysql2';
import type { Pool as PromisePool } from 'mysql2/promise';

// The parts of mysql2's callback Pool internals this package reads (mysql2 3.x, lib/base/pool.js).
export interface CorePoolInternals {
  _closed: boolean;
  _allConnections: { length: number };
  _freeConnections: { length: number };
  _connectionQueue: { length: number };
}

// mysql2/promise exports its PromisePool class (lib/promise/pool.js); its declarations do not.
export type PromisePoolClass = new (
  pool: mysql.Pool,
  promiseImpl?: PromiseConstructor,
) => PromisePool;
