// pg-promise through perEnvironment: one Database object (its own pool, from the pg that
// pg-promise bundles) per environment, each connection starting with its environment's header,
// the Env-Id as the database context (`$dc`, which also keeps pg-promise from warning about
// duplicate Database objects). Two environments interleaved, tasks and transactions.

import { closePerEnvironment, type PerEnvironment, perEnvironment } from '@picop/net-wrap';
import { pgStream } from '@picop/pg';
import { withEnvId } from '@picop/propagator';
import pg from 'pg';
import pgPromise, { type IDatabase } from 'pg-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataLayerIdioms, ROLLED_BACK } from '../support/data-layer.js';
import { type Env, inBoth } from '../support/environments.js';
import { useContextManager } from '../support/otel-and-tls.js';
import { useServerPair } from '../support/pair.js';
import { PG_HOST, PG_PORT, startPostgres } from '../support/servers.js';

useContextManager();
const TABLE = `pgp_${Date.now().toString(36)}`;
const login = { user: 'postgres', database: 'postgres' };

describe('pg-promise, one Database per environment', () => {
  const pair = useServerPair(() => startPostgres(), `${PG_HOST}:${PG_PORT}`);
  const pgp = pgPromise();
  const direct = {} as Record<Env, pg.Client>;
  let db: PerEnvironment<IDatabase<unknown>>;

  beforeAll(async () => {
    direct.main = new pg.Client({ host: PG_HOST, port: PG_PORT, ...login });
    direct['feature-1'] = new pg.Client({ host: '127.0.0.1', port: pair.second.port, ...login });
    for (const c of Object.values(direct)) {
      await c.connect();
      await c.query(`CREATE TABLE ${TABLE} (id serial PRIMARY KEY, env text, what text)`);
    }
    db = perEnvironment(
      (env) =>
        pgp(
          { host: '127.0.0.1', port: pair.port, ...login, max: 4, stream: pgStream(env) },
          env.envId ?? 'baseline',
        ),
      { destroy: (database) => database.$pool.end() },
    );
  }, 120_000);
  afterAll(async () => {
    await closePerEnvironment(db);
    for (const c of Object.values(direct)) {
      await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await c.end();
    }
  });

  const insert = `INSERT INTO ${TABLE} (env, what) VALUES ($1, $2)`;
  dataLayerIdioms(() => ({
    insert: (env, what) => db.none(insert, [env, what]),
    transaction: (env, what, fail) =>
      db.tx(async (t) => {
        await t.none(insert, [env, what]);
        if (fail) throw ROLLED_BACK;
      }),
    rowsOf: async (env) => (await direct[env].query(`SELECT env, what FROM ${TABLE}`)).rows,
  }));

  it('a task runs wholly in its environment, and $dc names it', async () => {
    const seen = await inBoth((env) =>
      db.task(async (t) => {
        await t.none(insert, [env, 'task']);
        return {
          dc: t.ctx.dc,
          count: await t.one(`SELECT count(*)::int AS n FROM ${TABLE} WHERE what = 'task'`),
        };
      }),
    );
    expect(seen).toEqual([
      { dc: 'feature-1', count: { n: 1 } },
      { dc: 'baseline', count: { n: 1 } },
    ]);
  });

  it('an environment whose pool was ended fails its queries; the baseline goes on', async () => {
    await withEnvId('feature-1', () => db.$pool.end());
    // pg-promise refuses a Database whose pool has ended: the environment's queries fail rather
    // than land anywhere else.
    await expect(withEnvId('feature-1', () => db.one('SELECT 1 AS one'))).rejects.toThrow();
    expect(await db.one('SELECT 1 AS one')).toEqual({ one: 1 });
  });
});
