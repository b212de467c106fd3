// Kept apart from the declarations: its version lookup uses import.meta, which tsup shims in the
// CommonJS build.

import { createRequire } from 'node:module';
import { unsupportedVersion } from '@picop/net-wrap/internal';
import { Agent } from 'undici';

/**
 * Throws `ERR_PICOP_UNSUPPORTED` for an undici whose `Agent` has no `stats` (before 7.9): without
 * them no pool could be judged idle, and every environment would count as busy for good.
 */
export function checkUndici(): void {
  if (Object.getOwnPropertyDescriptor(Agent.prototype, 'stats')?.get !== undefined) return;
  let version: string | undefined;
  try {
    version = (createRequire(import.meta.url)('undici/package.json') as { version: string })
      .version;
  } catch {}
  throw unsupportedVersion('@picop/fetch', 'undici', version, ['Agent.stats'], '^7.9.0');
}
