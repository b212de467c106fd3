import type { PicopWrapperOptions } from '@picop/net-wrap';
import type { ConnectionOptions, PoolOptions } from 'mysql2';

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
