export { Redis } from './Redis.js';
export type { PicopRedisClientOptions, PicopRedisOptions, RedisIsolation } from './types.js';
