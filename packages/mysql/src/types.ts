import type { ContextPools, PicopWrapperOptions } from '@picop/net-wrap';
import type { ConnectionOptions, PoolOptions } from 'mysql2';
import type { Pool as PromisePool } from 'mysql2/promise';

/** The `picop` key of the config. */
export interface PicopMysqlOptions extends PicopWrapperOptions {
  /**
   * Most environments with a pool at once; past it the least recently used idle pool is closed.
   * @default 32
   */
  maxPools?: number;
}

/** mysql2's pool options plus `picop` (`false` turns PiCoP off: plain mysql2). */
export type PicopPoolOptions = PoolOptions & { picop?: PicopMysqlOptions | false };

/** mysql2's connection options plus `picop`. */
export type PicopConnectionOptions = ConnectionOptions & { picop?: PicopMysqlOptions | false };

/**
 * What `createPool` returns: mysql2/promise's `Pool`, plus `pools` (the per-environment pools,
 * with counters for metrics) when PiCoP is on.
 */
export type PicopPromisePool = PromisePool & { readonly pools?: ContextPools<PromisePool> };
