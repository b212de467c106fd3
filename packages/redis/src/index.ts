export { Redis } from './Redis.js';
export type { PicopRedisClientOptions, PicopRedisOptions } from './types.js';
