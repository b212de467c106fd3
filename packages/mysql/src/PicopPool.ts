import { EventEmitter } from 'node:events';
import type { ContextPools } from '@picop/net-wrap';
import type { Pool, PoolConnection } from 'mysql2/promise';
import { PoolRouter } from './PoolRouter.js';
import type { PicopPoolOptions } from './types.js';

type PromiseOf<K extends keyof Pool> = Pool[K] extends (...args: never[]) => infer R ? R : never;

/**
 * The promise Pool of `@picop/mysql`: each call runs on the mysql2 pool of the active context's
 * environment. See {@link createPool}.
 */
export class PicopPool extends EventEmitter {
  readonly #router: PoolRouter;

  constructor(config: PicopPoolOptions, router?: PoolRouter) {
    super();
    this.#router = router ?? new PoolRouter(config, config.picop || {}, this);
  }

  query(...args: Parameters<Pool['query']>): PromiseOf<'query'> {
    return this.#call((pool) => pool.query(...args)) as PromiseOf<'query'>;
  }

  execute(...args: Parameters<Pool['execute']>): PromiseOf<'execute'> {
    return this.#call((pool) => pool.execute(...args)) as PromiseOf<'execute'>;
  }

  /** A connection of the active environment's pool; `release()` returns it there. */
  getConnection(): Promise<PoolConnection> {
    return this.#call((pool) => pool.getConnection());
  }

  releaseConnection(connection: PoolConnection): void {
    connection.release();
  }

  escape(value: unknown): string {
    return this.#router.acquire().escape(value);
  }

  escapeId(value: string | string[]): string {
    return this.#router.acquire().escapeId(value as string);
  }

  format(sql: string, values?: unknown): string {
    return this.#router.acquire().format(sql, values);
  }

  /** The mysql2 core pool of the active environment. */
  get pool(): Pool['pool'] {
    return this.#router.acquire().pool;
  }

  /** The per-environment pools: counters `size`, `created`, `evicted`, `expired` for metrics. */
  get pools(): ContextPools<Pool> {
    return this.#router.pools;
  }

  /** Ends every environment's pool. */
  end(): Promise<void> {
    return this.#router.end();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.end();
  }

  #call<T>(fn: (pool: Pool) => Promise<T>): Promise<T> {
    try {
      return fn(this.#router.acquire());
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
