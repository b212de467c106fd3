// What every data layer's recipe test runs (test/data-layers): two environments interleaved in
// one tick, transactions committed and rolled back, every row read back straight from its own
// store.
import { expect, it } from 'vitest';
import { type Env, inBoth } from './environments.js';

const ENVS = ['feature-1', 'main'] as const;

/** A data layer wired by a recipe, and a direct reader of each environment's store. */
export interface DataLayer {
  /** Writes the row `{ env, what }`, in the active environment. */
  insert(env: Env, what: string): Promise<unknown>;
  /** Writes `{ env, what }` in a transaction that commits, or rolls back when `fail`. */
  transaction(env: Env, what: string, fail: boolean): Promise<unknown>;
  /** The rows of `env`'s own store (its server, schema or database), read directly. */
  rowsOf(env: Env): Promise<Array<{ env: string; what: string }>>;
}

/** Registers the tests every recipe runs, on `layer()` (read inside the tests). */
export function dataLayerIdioms(layer: () => DataLayer): void {
  const envsOf = async (env: Env, what: string) =>
    (await layer().rowsOf(env)).filter((r) => r.what === what).map((r) => r.env);

  it('50 inserts per environment, interleaved in one tick, each in its own store', async () => {
    const { insert } = layer();
    // Awaited inside the environment, as a request handler does: a lazy query builder (Drizzle,
    // knex) runs when awaited, in the context of the code that awaits it.
    await Promise.all(
      Array.from({ length: 50 }, () =>
        inBoth(async (env) => {
          await insert(env, 'insert');
        }),
      ),
    );
    for (const env of ENVS) expect(await envsOf(env, 'insert')).toEqual(Array(50).fill(env));
  });

  it('transactions: 10 committed and 5 rolled back per environment, none crossing', async () => {
    const { transaction } = layer();
    const settled = await Promise.allSettled(
      Array.from({ length: 15 }, (_, i) =>
        inBoth((env) => transaction(env, i < 10 ? 'commit' : 'rollback', i >= 10)),
      ),
    );
    expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(5);
    for (const env of ENVS) {
      expect(await envsOf(env, 'commit')).toEqual(Array(10).fill(env));
      expect(await envsOf(env, 'rollback')).toEqual([]);
    }
  });
}

/** The error a rolled-back transaction's callback throws. */
export const ROLLED_BACK = new Error('rolled back');
