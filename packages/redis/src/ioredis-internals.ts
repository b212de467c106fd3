// Every use of ioredis's private internals, in one place, checked against the installed ioredis
// (tested: 5.3 to 6.1, the peer range's oldest and newest): an ioredis that has moved them fails
// with ERR_PICOP_UNSUPPORTED naming its version, never later with a TypeError or a client judged
// idle while it is busy.

import { createRequire } from 'node:module';
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
  const missing: string[] = [];
  if (typeof Redis !== 'function') missing.push('the named export Redis');
  else {
    // A client that never connects: its queues exist from the constructor.
    const probe = new Redis({ lazyConnect: true }) as unknown as Partial<RedisInternals>;
    // `condition` exists once a client connects; it is read with `?.`.
    if (typeof probe.commandQueue?.length !== 'number') missing.push('commandQueue');
    if (typeof probe.offlineQueue?.length !== 'number') missing.push('offlineQueue');
    if (typeof Redis.prototype.getBuiltinCommands !== 'function')
      missing.push('getBuiltinCommands');
  }
  if (missing.length > 0) {
    throw unsupportedVersion('@picop/redis', 'ioredis', versionOf(), missing, RANGE);
  }
  checked = true;
}

/** The base class, or `ERR_PICOP_UNSUPPORTED` at import for an ioredis without it (before 5.3). */
export function ioredisClass(): typeof Redis {
  if (typeof Redis !== 'function') {
    throw unsupportedVersion(
      '@picop/redis',
      'ioredis',
      versionOf(),
      ['the named export Redis'],
      RANGE,
    );
  }
  return Redis;
}

function versionOf(): string | undefined {
  try {
    return (createRequire(import.meta.url)('ioredis/package.json') as { version: string }).version;
  } catch {
    return undefined;
  }
}
