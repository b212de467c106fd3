// Kept apart from the declarations: its version lookup uses import.meta, which tsup shims in the
// CommonJS build.

import { unsupportedVersion } from '@picop/net-wrap/internal';
import { Agent } from 'undici';

/**
 * Throws `ERR_PICOP_UNSUPPORTED` for an undici whose `Agent` has no `stats` (before 7.9): without
 * them no pool could be judged idle, and every environment would count as busy for good.
 */
export function checkUndici(): void {
  if (Object.getOwnPropertyDescriptor(Agent.prototype, 'stats')?.get !== undefined) return;
  throw unsupportedVersion({
    label: '@picop/fetch',
    library: 'undici',
    missing: ['Agent.stats'],
    range: '^7.9.0',
    installed: { from: import.meta.url },
  });
}
