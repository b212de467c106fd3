// What every data layer's recipe test runs (test/data-layers): two environments interleaved in
// one tick, transactions committed and rolled back, every row read back straight from its own
// store.
import { closePerEnvironment, type PerEnvironment } from '@picop/net-wrap';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Env, inBoth } from './environments.js';
import { useServerPair } from './pair.js';
import {
  MYSQL_HOST,
  MYSQL_PORT,
  PG_HOST,
  PG_PORT,
  startMariadb,
  startPostgres,
} from './servers.js';

const ENVS = ['feature-1', 'main'] as const;

/** A data layer wired by a recipe, and a direct reader of each environment's store. */
export interface DataLayer {
  /** Writes the row `{ env, what }`, in the active environment. */
  insert(env: Env, what: string): Promise<unknown>;
  /** Writes `{ env, what }` in a transaction that commits, or rolls back when `fail`. */
  transaction(env: Env, what: string, fail: boolean): Promise<unknown>;
  /** The rows of `env`'s own store (its server, schema or database), read directly. */
  rowsOf(env: Env): Promise<Row[]>;
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

/** A row of the data-layer tests' tables. */
export type Row = { env: string; what: string };

/** Each environment's own store, read directly, and the proxy in front of both. */
export interface Stores<C> {
  /** The proxy's port (header required): feature-1 to its own server, the rest to the baseline. */
  readonly port: number;
  /** A direct client of each environment's server. */
  readonly direct: Record<Env, C>;
  /** The rows of `table` (default: the fixture's) in `env`'s server. */
  rowsOf(env: Env, table?: string): Promise<Row[]>;
}

const PG_LOGIN = { user: 'postgres', database: 'postgres' };
const MYSQL_LOGIN = { user: 'root', password: '', database: 'test' };

/**
 * feature-1's own PostgreSQL beside the baseline's, picop-proxy in front of both, and `tables`
 * (`id serial, env text, what text`) made in both before the file's tests and dropped after.
 * Read the fields inside tests or hooks.
 */
export function usePgStores(...tables: [string, ...string[]]): Stores<pg.Client> {
  const pair = useServerPair(() => startPostgres(), `${PG_HOST}:${PG_PORT}`);
  const direct = {} as Record<Env, pg.Client>;
  beforeAll(async () => {
    direct.main = new pg.Client({ host: PG_HOST, port: PG_PORT, ...PG_LOGIN });
    direct['feature-1'] = new pg.Client({ host: '127.0.0.1', port: pair.second.port, ...PG_LOGIN });
    for (const c of Object.values(direct)) {
      await c.connect();
      for (const table of tables) {
        await c.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, env text, what text)`);
      }
    }
  }, 120_000);
  afterAll(async () => {
    for (const c of Object.values(direct)) {
      for (const table of tables) await c.query(`DROP TABLE IF EXISTS ${table}`);
      await c.end();
    }
  });
  return {
    get port() {
      return pair.port;
    },
    direct,
    rowsOf: async (env, name = tables[0]) =>
      (await direct[env].query<Row>(`SELECT env, what FROM ${name} ORDER BY id`)).rows,
  };
}

/** {@link usePgStores} for MariaDB: `id int AUTO_INCREMENT, env, what varchar(32)`. */
export function useMysqlStores(...tables: [string, ...string[]]): Stores<mysql.Connection> {
  const pair = useServerPair(() => startMariadb(), `${MYSQL_HOST}:${MYSQL_PORT}`);
  const direct = {} as Record<Env, mysql.Connection>;
  beforeAll(async () => {
    direct.main = await mysql.createConnection({
      host: MYSQL_HOST,
      port: MYSQL_PORT,
      ...MYSQL_LOGIN,
    });
    direct['feature-1'] = await mysql.createConnection({
      host: '127.0.0.1',
      port: pair.second.port,
      ...MYSQL_LOGIN,
    });
    for (const c of Object.values(direct)) {
      for (const table of tables) {
        await c.query(
          `CREATE TABLE ${table} (id int AUTO_INCREMENT PRIMARY KEY, env varchar(32), what varchar(32))`,
        );
      }
    }
  }, 120_000);
  afterAll(async () => {
    for (const c of Object.values(direct)) {
      for (const table of tables) await c.query(`DROP TABLE IF EXISTS ${table}`);
      await c.end();
    }
  });
  return {
    get port() {
      return pair.port;
    },
    direct,
    async rowsOf(env, name = tables[0]) {
      const [rows] = await direct[env].query(`SELECT env, what FROM ${name} ORDER BY id`);
      return rows as Row[];
    },
  };
}

/** feature-1's schema under `isolate` of the schema tests: `env_feature-1`. */
export const isolateBySchema = { schema: (envId: string) => `env_${envId}` };

/**
 * One PostgreSQL (the baseline's, no proxy) with `table` in `public` (the baseline's) and in
 * feature-1's schema, `env_feature-1` ({@link isolateBySchema}); both dropped after.
 */
export function useSchemaPerEnvironment(table: string): {
  admin: pg.Client;
  rowsOf(env: Env): Promise<Row[]>;
} {
  const SCHEMA = isolateBySchema.schema('feature-1');
  const admin = new pg.Client({ host: PG_HOST, port: PG_PORT, ...PG_LOGIN });
  beforeAll(async () => {
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    await admin.query(`CREATE SCHEMA "${SCHEMA}"`);
    for (const schema of ['public', SCHEMA]) {
      await admin.query(`DROP TABLE IF EXISTS "${schema}".${table}`);
      await admin.query(
        `CREATE TABLE "${schema}".${table} (id serial PRIMARY KEY, env text NOT NULL, what text NOT NULL)`,
      );
    }
  });
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    await admin.query(`DROP TABLE IF EXISTS public.${table}`);
    await admin.end();
  });
  return {
    admin,
    rowsOf: async (env) =>
      (
        await admin.query<Row>(
          `SELECT env, what FROM "${env === 'main' ? 'public' : SCHEMA}".${table} ORDER BY id`,
        )
      ).rows,
  };
}

/**
 * What `make` returns (a `perEnvironment` object), made before the file's tests, after the
 * fixtures registered before this call, and closed before them.
 */
export function usePerEnvironment<T extends object>(
  make: () => PerEnvironment<T>,
): () => PerEnvironment<T> {
  let made: PerEnvironment<T> | undefined;
  beforeAll(() => {
    made = make();
  });
  afterAll(async () => {
    if (made !== undefined) await closePerEnvironment(made);
  });
  return () => {
    if (made === undefined) throw new Error('usePerEnvironment: read it inside a test');
    return made;
  };
}
