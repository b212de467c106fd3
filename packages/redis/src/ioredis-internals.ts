// Every use of ioredis's private internals, in one place, checked against the installed ioredis
// (tested: 5.3 to 6.1, the peer range's oldest and newest): an ioredis that has moved them fails
// with ERR_PICOP_UNSUPPORTED naming its version, never later with a TypeError or a client judged
// idle while it is busy.

import { unsupportedVersion } from '@picop/net-wrap/internal';
import { Redis } from 'ioredis';

// The parts of ioredis's Redis internals this package reads (built/Redis.js).
interface RedisInternals {
  condition: { subscriber: unknown } | null;
  commandQueue: { length: number };
  offlineQueue: { length: number };
}

const RANGE = '^5.3.0 || ^6.0.0';

/** Whether a client has no command in flight or queued, and no subscription. */
export function clientIsIdle(client: Redis): boolean {
  const c = client as unknown as RedisInternals;
  return !c.condition?.subscriber && c.commandQueue.length === 0 && c.offlineQueue.length === 0;
}

let checked = false;

/** Throws `ERR_PICOP_UNSUPPORTED` when the installed ioredis lacks what this package uses. */
export function checkIoredis(): void {
  if (checked) return;
  // The named export itself is checked at import (ioredisClass). A client that never connects:
  // its queues exist from the constructor; `condition` only once it connects (read with `?.`).
  const probe = new Redis({ lazyConnect: true }) as unknown as Partial<RedisInternals>;
  const missing: string[] = [];
  if (typeof probe.commandQueue?.length !== 'number') missing.push('commandQueue');
  if (typeof probe.offlineQueue?.length !== 'number') missing.push('offlineQueue');
  if (typeof Redis.prototype.getBuiltinCommands !== 'function') missing.push('getBuiltinCommands');
  if (missing.length > 0) {
    throw unsupportedVersion({
      label: '@picop/redis',
      library: 'ioredis',
      missing,
      range: RANGE,
      installed: { from: import.meta.url },
    });
  }
  checked = true;
}

/** The base class, or `ERR_PICOP_UNSUPPORTED` at import for an ioredis without it (before 5.3). */
export function ioredisClass(): typeof Redis {
  if (typeof Redis !== 'function') {
    throw unsupportedVersion({
      label: '@picop/redis',
      library: 'ioredis',
      missing: ['the named export Redis'],
      range: RANGE,
      installed: { from: import.meta.url },
    });
  }
  return Redis;
}
