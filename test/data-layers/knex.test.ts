// knex through perEnvironment: one knex (and so one connection pool) per environment, each
// connection starting with its environment's header. Two environments interleaved in one tick,
// transactions committed and rolled back, every row read back straight from its own server.

import { mysqlStream } from '@picop/mysql';
import {
  closePerEnvironment,
  type PerEnvironment,
  PICOP_POOLS,
  type PoolContext,
  perEnvironment,
} from '@picop/net-wrap';
import { pgIsolation, pgStream } from '@picop/pg';
import knex, { type Knex } from 'knex';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataLayerIdioms, ROLLED_BACK } from '../support/data-layer.js';
import { type Env, inBoth } from '../support/environments.js';
import { useContextManager } from '../support/otel-and-tls.js';
import { useServerPair } from '../support/pair.js';
import {
  MYSQL_HOST,
  MYSQL_PORT,
  PG_HOST,
  PG_PORT,
  startMariadb,
  startPostgres,
} from '../support/servers.js';

useContextManager();
const TABLE = `knex_${Date.now().toString(36)}`;

/** What every store's test runs: rows, transactions and a stream, in both environments at once. */
function idioms(
  dbOf: () => PerEnvironment<Knex>,
  rowsOf: (env: Env) => Promise<Array<{ env: string; what: string }>>,
) {
  dataLayerIdioms(() => {
    const db = dbOf();
    return {
      insert: (env, what) => db(TABLE).insert({ env, what }),
      transaction: (env, what, fail) =>
        db.transaction(async (trx) => {
          await trx(TABLE).insert({ env, what });
          if (fail) throw ROLLED_BACK;
        }),
      rowsOf,
    };
  });

  it('a method kept from start-up still routes each call to the caller’s environment', async () => {
    const db = dbOf();
    const raw = db.raw; // taken outside any request, called without its object
    await inBoth((env) => raw(`INSERT INTO ${TABLE} (env, what) VALUES (?, 'kept')`, [env]));
    for (const env of ['feature-1', 'main'] as const) {
      expect((await rowsOf(env)).filter((r) => r.what === 'kept').map((r) => r.env)).toEqual([env]);
    }
  });

  it('a streamed select reads its own environment’s rows', async () => {
    const db = dbOf();
    const streamed = await inBoth(async (_env) => {
      const seen = new Set<string>();
      for await (const row of db(TABLE).select('env').stream())
        seen.add((row as { env: string }).env);
      return [...seen];
    });
    expect(streamed).toEqual([['feature-1'], ['main']]);
  });

  it('one knex per environment: the pools count them, the baseline’s included', async () => {
    const db = dbOf();
    await inBoth(() => db(TABLE).count());
    const envs = [...db[PICOP_POOLS].byEnvId()].map(([envId]) => envId ?? 'baseline').sort();
    expect(envs).toEqual(['baseline', 'feature-1']);
  });
}

/** The recipe: one knex per environment, its connections made by `connection(env)`. */
function knexPerEnvironment(client: string, connection: (env: PoolContext) => object) {
  return perEnvironment(
    (env) => knex({ client, connection: connection(env), pool: { min: 0, max: 4 } }),
    { destroy: (k) => k.destroy() },
  );
}

async function closeAll(
  db: PerEnvironment<Knex>,
  direct: Array<{ query(sql: string): Promise<unknown>; end(): Promise<void> }>,
) {
  await closePerEnvironment(db);
  for (const c of direct) {
    await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await c.end();
  }
}

describe('knex on node-postgres, one knex per environment', () => {
  const pair = useServerPair(() => startPostgres(), `${PG_HOST}:${PG_PORT}`);
  const login = { user: 'postgres', database: 'postgres' };
  let db: PerEnvironment<Knex>;
  const direct = {} as Record<Env, pg.Client>;

  beforeAll(async () => {
    direct.main = new pg.Client({ host: PG_HOST, port: PG_PORT, ...login });
    direct['feature-1'] = new pg.Client({ host: '127.0.0.1', port: pair.second.port, ...login });
    for (const c of Object.values(direct)) {
      await c.connect();
      await c.query(`CREATE TABLE ${TABLE} (env text, what text)`);
    }
    db = knexPerEnvironment('pg', (env) => ({
      host: '127.0.0.1',
      port: pair.port,
      ...login,
      stream: pgStream(env),
    }));
  }, 120_000);
  afterAll(() => closeAll(db, Object.values(direct)));

  idioms(
    () => db,
    async (env) => (await direct[env].query(`SELECT env, what FROM ${TABLE}`)).rows,
  );
});

describe('knex on mysql2, one knex per environment', () => {
  const pair = useServerPair(() => startMariadb(), `${MYSQL_HOST}:${MYSQL_PORT}`);
  const login = { user: 'root', password: '', database: 'test' };
  let db: PerEnvironment<Knex>;
  const direct = {} as Record<Env, mysql.Connection>;

  beforeAll(async () => {
    direct.main = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, ...login });
    direct['feature-1'] = await mysql.createConnection({
      host: '127.0.0.1',
      port: pair.second.port,
      ...login,
    });
    for (const c of Object.values(direct)) {
      await c.query(`CREATE TABLE ${TABLE} (env varchar(32), what varchar(32))`);
    }
    db = perEnvironment(
      (env) =>
        knex({
          client: 'mysql2',
          connection: {
            ...login,
            stream: mysqlStream(env, { host: '127.0.0.1', port: pair.port }),
          },
          pool: { min: 0, max: 4 },
        }),
      { destroy: (k) => k.destroy() },
    );
  }, 120_000);
  afterAll(async () => {
    await closePerEnvironment(db);
    for (const c of Object.values(direct)) {
      await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await c.end();
    }
  });

  idioms(
    () => db,
    async (env) => {
      const [rows] = await direct[env].query(`SELECT env, what FROM ${TABLE}`);
      return rows as Array<{ env: string; what: string }>;
    },
  );
});

describe('knex: a schema per environment on one PostgreSQL (searchPath, no proxy)', () => {
  const SCHEMA = 'env_feature-1';
  const login = { host: PG_HOST, port: PG_PORT, user: 'postgres', database: 'postgres' };
  const admin = new pg.Client(login);
  let db: PerEnvironment<Knex>;

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    await admin.query(`CREATE SCHEMA "${SCHEMA}"`);
    for (const schema of ['public', SCHEMA]) {
      await admin.query(`CREATE TABLE "${schema}".${TABLE} (env text, what text)`);
    }
    db = perEnvironment(
      (env) => {
        const { schema } = pgIsolation(env, { schema: (envId) => `env_${envId}` });
        return knex({
          client: 'pg',
          connection: login,
          ...(schema !== undefined && { searchPath: [schema] }),
          pool: { min: 0, max: 4 },
        });
      },
      { destroy: (k) => k.destroy(), header: false },
    );
  });
  afterAll(async () => {
    await closePerEnvironment(db);
    await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    await admin.query(`DROP TABLE IF EXISTS public.${TABLE}`);
    await admin.end();
  });

  idioms(
    () => db,
    async (env) =>
      (await admin.query(`SELECT env, what FROM "${env === 'main' ? 'public' : SCHEMA}".${TABLE}`))
        .rows,
  );
});
