// knex through perEnvironment: one knex (and so one connection pool) per environment, each
// connection starting with its environment's header; and a schema per environment on one
// PostgreSQL (searchPath). Two environments interleaved in one tick, transactions committed and
// rolled back, every row read back straight from its own store.

import { mysqlStream } from '@picop/mysql';
import { type PerEnvironment, PICOP_POOLS, perEnvironment } from '@picop/net-wrap';
import { pgIsolation, pgStream } from '@picop/pg';
import knex, { type Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import {
  dataLayerIdioms,
  isolateBySchema,
  ROLLED_BACK,
  type Row,
  useMysqlStores,
  usePerEnvironment,
  usePgStores,
  useSchemaPerEnvironment,
} from '../support/data-layer.js';
import { type Env, inBoth } from '../support/environments.js';
import { useContextManager } from '../support/otel-and-tls.js';
import { runId } from '../support/run-id.js';
import { PG_HOST, PG_PORT } from '../support/servers.js';

useContextManager();
const TABLE = `knex_${runId()}`;
const pgLogin = { user: 'postgres', database: 'postgres' };

/** The recipe: one knex per environment, `config(env)` its connection and search path. */
const knexPerEnvironment = (config: Parameters<typeof perEnvironment<Knex>>[0]) =>
  perEnvironment(config, { destroy: (k) => k.destroy() });

/** What every store's test runs: rows, transactions, a kept method, a stream. */
function idioms(db: () => PerEnvironment<Knex>, rowsOf: (env: Env) => Promise<Row[]>) {
  dataLayerIdioms(() => ({
    insert: (env, what) => db()(TABLE).insert({ env, what }),
    transaction: (env, what, fail) =>
      db().transaction(async (trx) => {
        await trx(TABLE).insert({ env, what });
        if (fail) throw ROLLED_BACK;
      }),
    rowsOf,
  }));

  it('a method kept from start-up still routes each call to the caller’s environment', async () => {
    const raw = db().raw; // taken outside any request, called without its object
    await inBoth((env) => raw(`INSERT INTO ${TABLE} (env, what) VALUES (?, 'kept')`, [env]));
    for (const env of ['feature-1', 'main'] as const) {
      expect((await rowsOf(env)).filter((r) => r.what === 'kept').map((r) => r.env)).toEqual([env]);
    }
  });

  it('a streamed select reads its own environment’s rows', async () => {
    const streamed = await inBoth(async () => {
      const seen = new Set<string>();
      for await (const row of db()(TABLE).select('env').stream()) seen.add((row as Row).env);
      return [...seen];
    });
    expect(streamed).toEqual([['feature-1'], ['main']]);
  });

  it('one knex per environment: the pools count them, the baseline’s included', async () => {
    await inBoth(() => db()(TABLE).count());
    const envs = [...db()[PICOP_POOLS].byEnvId()].map(([envId]) => envId ?? 'baseline').sort();
    expect(envs).toEqual(['baseline', 'feature-1']);
  });
}

describe('knex on node-postgres, one knex per environment', () => {
  const stores = usePgStores(TABLE);
  const db = usePerEnvironment(() =>
    knexPerEnvironment((env) =>
      knex({
        client: 'pg',
        connection: { host: '127.0.0.1', port: stores.port, ...pgLogin, stream: pgStream(env) },
        pool: { min: 0, max: 4 },
      }),
    ),
  );
  idioms(db, (env) => stores.rowsOf(env));
});

describe('knex on mysql2, one knex per environment', () => {
  const stores = useMysqlStores(TABLE);
  const db = usePerEnvironment(() =>
    knexPerEnvironment((env) =>
      knex({
        client: 'mysql2',
        connection: {
          user: 'root',
          password: '',
          database: 'test',
          stream: mysqlStream(env, { host: '127.0.0.1', port: stores.port }),
        },
        pool: { min: 0, max: 4 },
      }),
    ),
  );
  idioms(db, (env) => stores.rowsOf(env));
});

describe('knex: a schema per environment on one PostgreSQL (searchPath, no proxy)', () => {
  const store = useSchemaPerEnvironment(TABLE);
  const db = usePerEnvironment(() =>
    perEnvironment(
      (env) => {
        const { schema } = pgIsolation(env, isolateBySchema);
        return knex({
          client: 'pg',
          connection: { host: PG_HOST, port: PG_PORT, ...pgLogin },
          ...(schema !== undefined && { searchPath: [schema] }),
          pool: { min: 0, max: 4 },
        });
      },
      { destroy: (k) => k.destroy(), header: false },
    ),
  );
  idioms(db, store.rowsOf);
});
