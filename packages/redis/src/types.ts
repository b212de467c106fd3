import type { PicopWrapperOptions } from '@picop/net-wrap/internal';
import type { RedisOptions } from 'ioredis';

/** The `picop` key of the options. */
export interface PicopRedisOptions extends PicopWrapperOptions {
  /** @deprecated since 0.2.0, removed in 0.3.0: `maxPools`. */
  maxClients?: number;
  /** Logical isolation on the client's own Redis: see {@link RedisIsolation}. */
  isolate?: RedisIsolation;
}

/**
 * Each environment's keys on the one Redis: behind a key prefix, or in a database of its own.
 * The baseline keeps the client's own `keyPrefix` and `db`.
 */
export interface RedisIsolation {
  /**
   * `true`: keys of feature-1 get the prefix `picop-env:feature-1:`, after the client's own
   * `keyPrefix` (`shop:picop-env:feature-1:cart`). A function names the part after `picop-env:`;
   * `undefined`: the baseline's keys. The baseline cannot name a key under `picop-env:`.
   */
  keyPrefix?: true | ((envId: string) => string | undefined);
  /** The database index of an environment (`SELECT`); `undefined`: the baseline's. */
  db?: (envId: string) => number | undefined;
}

/** ioredis's options plus `picop` (`false` turns PiCoP off: plain ioredis). */
export type PicopRedisClientOptions = RedisOptions & { picop?: PicopRedisOptions | false };
