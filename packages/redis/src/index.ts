export { ISOLATED_KEYS } from './isolate.js';
export { Redis } from './Redis.js';
export type { PicopRedisClientOptions, PicopRedisOptions, RedisIsolation } from './types.js';
