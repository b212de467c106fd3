import { withEnvId } from '@picop/propagator';

/** The two environments of the idiom matrices: feature-1 (its own instance) and the baseline. */
export type Env = 'feature-1' | 'main';

/** Runs `fn` in feature-1 and in the baseline (no Env-Id), both started in the same tick. */
export function inBoth<T>(fn: (env: Env) => T): Promise<Array<Awaited<T>>> {
  return Promise.all([withEnvId('feature-1', () => fn('feature-1')), fn('main')]);
}
