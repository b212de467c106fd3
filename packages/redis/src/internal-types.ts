// The parts of ioredis's Redis internals this package reads (ioredis 5.x, built/Redis.js).
export interface RedisInternals {
  condition: { subscriber: unknown } | null;
  commandQueue: { length: number };
  offlineQueue: { length: number };
}
