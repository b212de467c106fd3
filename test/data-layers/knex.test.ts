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
import { pgStream } from '@picop/pg';
import knex, { type Knex } from 'knex';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  it('50 inserts per environment, interleaved in one tick, each in its own server', async () => {
    const db = dbOf();
    await Promise.all(
      Array.from({ length: 50 }, () => inBoth((env) => db(TABLE).insert({ env, what: 'insert' }))),
    );
    for (const env of ['feature-1', 'main'] as const) {
      const rows = (await rowsOf(env)).filter((r) => r.what === 'insert');
      expect(rows.map((r) => r.env)).toEqual(Array(50).fill(env));
    }
  });

  it('transactions: 10 committed and 5 rolled back per environment, none crossing', async () => {
    const db = dbOf();
    const work = (env: Env, i: number) =>
      db.transaction(async (trx) => {
        await trx(TABLE).insert({ env, what: i < 10 ? 'commit' : 'rollback' });
        if (i >= 10) throw new Error('rolled back');
      });
    const settled = await Promise.allSettled(
      Array.from({ length: 15 }, (_, i) => inBoth((env) => work(env, i))),
    );
    expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(5);
    for (const env of ['feature-1', 'main'] as const) {
      const rows = await rowsOf(env);
      expect(rows.filter((r) => r.what === 'commit').map((r) => r.env)).toEqual(
        Array(10).fill(env),
      );
      expect(rows.filter((r) => r.what === 'rollback')).toEqual([]);
    }
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
