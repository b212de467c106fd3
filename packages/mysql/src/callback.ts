import { PicopCallbackPool } from './PicopPool.js';
import type { PicopPoolOptions } from './types.js';

export { PicopCallbackPool } from './PicopPool.js';
export type { PicopMysqlOptions, PicopPoolOptions } from './types.js';

/**
 * A drop-in for `mysql2`'s callback-style `createPool`, with one pool per environment (see
 * {@link PicopCallbackPool}). With `picop: false` (or `PICOP_DISABLED=1`) it is mysql2's pool.
 *
 * @example
 * import { createPool } from '@picop/mysql/callback';
 * const pool = createPool({ host: 'mysql-proxy', user: 'app', database: 'shop' });
 * pool.query('SELECT 1', (err, rows) => {});
 */
export function createPool(config: PicopPoolOptions | string): PicopCallbackPool {
  return new PicopCallbackPool(config);
}
