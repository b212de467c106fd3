import type { PicopWrapperOptions } from '@picop/net-wrap';
import type { RedisOptions } from 'ioredis';

/** The `picop` key of the options. */
export interface PicopRedisOptions extends PicopWrapperOptions {
  /**
   * Most environments with a client (one connection each) at once; past it the least recently
   * used idle client is closed.
   * @default 32
   */
  maxClients?: number;
}

/** ioredis's options plus `picop` (`false` turns PiCoP off: plain ioredis). */
export type PicopRedisClientOptions = RedisOptions & { picop?: PicopRedisOptions | false };
