import { PicopError } from '@picop/codec';
import { ISOLATED_KEYS, isolatedKeyPrefix, isolationName } from '@picop/net-wrap/internal';
import type { RedisOptions } from 'ioredis';
import type { RedisIsolation } from './types.js';

export { ISOLATED_KEYS };

/** The namespace of isolated environments' keys for a client with `ownPrefix`, if it has one. */
export function isolatedKeys(
  isolate: RedisIsolation | undefined,
  ownPrefix: string | undefined,
): string | undefined {
  return isolate?.keyPrefix === undefined ? undefined : `${ownPrefix ?? ''}${ISOLATED_KEYS}`;
}

/**
 * The client options of environment `envId` under `isolate`, the prefix after the client's own.
 * Throws `ERR_PICOP_INVALID_ARG` for an Env-Id that cannot be part of a key prefix, or a bad
 * database index.
 */
export function isolated(
  isolate: RedisIsolation | undefined,
  envId: string,
  ownPrefix: string | undefined,
): RedisOptions {
  if (isolate === undefined) return {};
  const name = isolationName(envId);
  const options: RedisOptions = {};
  if (isolate.keyPrefix !== undefined) {
    const prefix = isolatedKeyPrefix(isolate.keyPrefix, name, ownPrefix);
    if (prefix !== undefined) options.keyPrefix = prefix;
  }
  if (isolate.db !== undefined) {
    const db = isolate.db(name);
    if (db !== undefined && (!Number.isInteger(db) || db < 0)) {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `isolate.db(${JSON.stringify(name)}) must be a database index, got ${JSON.stringify(db)}`,
      );
    }
    if (db !== undefined) options.db = db;
  }
  return options;
}
