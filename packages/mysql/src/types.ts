import type { PicopWrapperOptions } from '@picop/net-wrap/internal';
import type { ConnectionOptions, PoolOptions } from 'mysql2';

/** The `picop` key of the config. */
export interface PicopMysqlOptions extends PicopWrapperOptions {
  /** Logical isolation on the client's own MySQL: see {@link MysqlIsolation}. */
  isolate?: MysqlIsolation;
}

/** Each environment in a database of its own on the one MySQL; the baseline keeps `database`. */
export interface MysqlIsolation {
  /**
   * The database of an environment (its Env-Id checked first: letters, digits, `_`, `-`);
   * `undefined`: it shares the baseline's, as an environment without a route shares the
   * baseline's server.
   */
  database: (envId: string) => string | undefined;
  /**
   * Runs before an environment's pool serves its first query, e.g.
   * `` pool.query(`CREATE DATABASE IF NOT EXISTS ${pool.escapeId(database)}`) ``; never implicit.
   * A failure fails that query, and the next use tries again.
   */
  create?: (environment: { envId: string; database: string }) => Promise<void>;
}

/** mysql2's pool options plus `picop` (`false` turns PiCoP off: plain mysql2). */
export type PicopPoolOptions = PoolOptions & { picop?: PicopMysqlOptions | false };

/** mysql2's connection options plus `picop`. */
export type PicopConnectionOptions = ConnectionOptions & { picop?: PicopMysqlOptions | false };
