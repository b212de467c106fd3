import { EventEmitter } from 'node:events';
import { picopEnabled } from '@picop/net-wrap/internal';
import mysql from 'mysql2';
import { PicopPool } from './PicopPool.js';
import { PoolRouter } from './PoolRouter.js';
import type { PicopPoolOptions } from './types.js';

export type { PicopMysqlOptions, PicopPoolOptions } from './types.js';

type Core = mysql.Pool;

/** The callback-style Pool of `@picop/mysql/callback`: each call runs on the active environment's pool. */
export class PicopCallbackPool extends EventEmitter {
  readonly #router: PoolRouter;
  readonly #config: PicopPoolOptions;

  constructor(config: PicopPoolOptions) {
    super();
    this.#config = config;
    this.#router = new PoolRouter(config, config.picop || {}, this);
  }

  query(...args: Parameters<Core['query']>): ReturnType<Core['query']> {
    return this.#core().query(...args);
  }

  execute(...args: Parameters<Core['execute']>): ReturnType<Core['execute']> {
    return this.#core().execute(...args);
  }

  getConnection(callback: Parameters<Core['getConnection']>[0]): void {
    let core: Core;
    try {
      core = this.#core();
    } catch (err) {
      process.nextTick(callback, err as NodeJS.ErrnoException, undefined as never);
      return;
    }
    core.getConnection(callback);
  }

  releaseConnection(connection: mysql.PoolConnection): void {
    connection.release();
  }

  escape(value: unknown): string {
    return this.#core().escape(value);
  }

  escapeId(value: string | string[]): string {
    return this.#core().escapeId(value as string);
  }

  format(sql: string, values?: unknown): string {
    return this.#core().format(sql, values as unknown[]);
  }

  /** Ends every environment's pool. */
  end(callback?: (err?: NodeJS.ErrnoException | null) => void): void {
    this.#router.end().then(
      () => callback?.(null),
      (err: NodeJS.ErrnoException) => callback?.(err),
    );
  }

  /** The promise API over the same per-environment pools (events stay on this pool). */
  promise(): PicopPool {
    return new PicopPool(this.#config, this.#router);
  }

  #core(): Core {
    return this.#router.acquire().pool as unknown as Core;
  }
}

/**
 * A drop-in for `mysql2`'s callback-style `createPool`, with one pool per environment.
 * With `picop: false` (or `PICOP_DISABLED=1`) it returns mysql2's own pool.
 *
 * @example
 * import { createPool } from '@picop/mysql/callback';
 * const pool = createPool({ host: 'mysql-proxy', user: 'app', database: 'shop' });
 * pool.query('SELECT 1', (err, rows) => {});
 */
export function createPool(config: PicopPoolOptions | string): mysql.Pool {
  const options: PicopPoolOptions = typeof config === 'string' ? { uri: config } : config;
  if (!picopEnabled(options.picop)) {
    const { picop: _picop, ...plain } = options;
    return mysql.createPool(plain);
  }
  return new PicopCallbackPool(options) as unknown as mysql.Pool;
}
