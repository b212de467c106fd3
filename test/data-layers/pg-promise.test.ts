// pg-promise through perEnvironment: one Database object (its own pool, from the pg that
// pg-promise bundles) per environment, each connection starting with its environment's header,
// the Env-Id as the database context (`$dc`, which also keeps pg-promise from warning about
// duplicate Database objects). Two environments interleaved, tasks and transactions.

import { perEnvironment } from '@picop/net-wrap';
import { pgStream } from '@picop/pg';
import { withEnvId } from '@picop/propagator';
import pgPromise from 'pg-promise';
import { describe, expect, it } from 'vitest';
import {
  dataLayerIdioms,
  ROLLED_BACK,
  usePerEnvironment,
  usePgStores,
} from '../support/data-layer.js';
import { inBoth } from '../support/environments.js';
import { useContextManager } from '../support/otel-and-tls.js';
import { runId } from '../support/run-id.js';

useContextManager();
const TABLE = `pgp_${runId()}`;
const insert = `INSERT INTO ${TABLE} (env, what) VALUES ($1, $2)`;

describe('pg-promise, one Database per environment', () => {
  const stores = usePgStores(TABLE);
  const pgp = pgPromise();
  const db = usePerEnvironment(() =>
    perEnvironment(
      (env) =>
        pgp(
          {
            host: '127.0.0.1',
            port: stores.port,
            user: 'postgres',
            database: 'postgres',
            max: 4,
            stream: pgStream(env),
          },
          env.envId ?? 'baseline',
        ),
      { destroy: (database) => database.$pool.end() },
    ),
  );

  dataLayerIdioms(() => ({
    insert: (env, what) => db().none(insert, [env, what]),
    transaction: (env, what, fail) =>
      db().tx(async (t) => {
        await t.none(insert, [env, what]);
        if (fail) throw ROLLED_BACK;
      }),
    rowsOf: (env) => stores.rowsOf(env),
  }));

  it('a task runs wholly in its environment, and $dc names it', async () => {
    const seen = await inBoth((env) =>
      db().task(async (t) => {
        await t.none(insert, [env, 'task']);
        const counted = await t.one(`SELECT count(*)::int AS n FROM ${TABLE} WHERE what = 'task'`);
        return { dc: t.ctx.dc, counted };
      }),
    );
    expect(seen).toEqual([
      { dc: 'feature-1', counted: { n: 1 } },
      { dc: 'baseline', counted: { n: 1 } },
    ]);
  });

  it('an environment whose pool was ended fails its queries; the baseline goes on', async () => {
    await withEnvId('feature-1', () => db().$pool.end());
    // pg-promise refuses a Database whose pool has ended: the environment's queries fail rather
    // than land anywhere else.
    await expect(withEnvId('feature-1', () => db().one('SELECT 1 AS one'))).rejects.toThrow();
    expect(await db().one('SELECT 1 AS one')).toEqual({ one: 1 });
  });
});
