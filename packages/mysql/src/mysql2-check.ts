// The check of the installed mysql2 against what mysql2-internals.ts reads. Kept apart from the
// declarations: it names import.meta (the version lookup), which tsup shims in the CommonJS build.

import { unsupportedVersion } from '@picop/net-wrap/internal';
import mysql from 'mysql2';
import { CorePool, type CorePoolInternals, PromisePool } from './mysql2-internals.js';

let checked = false;

/** Throws `ERR_PICOP_UNSUPPORTED` when the installed mysql2 lacks what this package uses. */
export function checkMysql2(): void {
  if (checked) return;
  const probe = mysql.createPool({}) as unknown as Partial<CorePoolInternals> & { config?: object };
  const missing = [
    typeof CorePool !== 'function' && 'the Pool class',
    typeof PromisePool !== 'function' && 'the PromisePool class',
    typeof probe.config?.constructor !== 'function' && 'PoolConfig',
    typeof probe._closed !== 'boolean' && '_closed',
    ...(['_allConnections', '_freeConnections', '_connectionQueue'] as const).map(
      (name) => typeof probe[name]?.length !== 'number' && name,
    ),
  ].filter((m): m is string => typeof m === 'string');
  if (missing.length > 0) {
    throw unsupportedVersion({
      label: '@picop/mysql',
      library: 'mysql2',
      missing,
      range: '^3.9.0',
      installed: { from: import.meta.url },
    });
  }
  checked = true;
}
