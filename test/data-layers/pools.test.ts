// The data layers that take our pools as they are: Drizzle, Kysely and TypeORM on @picop/pg and
// @picop/mysql. Each takes a connection from the pool for a query or a transaction, in the context
// of the request that runs it, and keeps no connection across requests: the pool routes each one.
// Two environments interleaved in one tick, transactions, every row read back from its server.

import { createPool as mysqlPromisePool } from '@picop/mysql';
import * as picopMysqlCallback from '@picop/mysql/callback';
import { createPool as mysqlCallbackPool } from '@picop/mysql/callback';
import * as picopPg from '@picop/pg';
import { Pool } from '@picop/pg';
import { int, mysqlTable, varchar } from 'drizzle-orm/mysql-core';
import { drizzle as drizzleMysql } from 'drizzle-orm/mysql2';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { pgTable, serial, text } from 'drizzle-orm/pg-core';
import { Kysely, MysqlDialect, PostgresDialect } from 'kysely';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { DataSource, EntitySchema } from 'typeorm';
import { afterAll, beforeAll, describe } from 'vitest';
import { type DataLayer, dataLayerIdioms, ROLLED_BACK } from '../support/data-layer.js';
import type { Env } from '../support/environments.js';
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
const SUFFIX = Date.now().toString(36);
const table = (library: string) => `${library}_${SUFFIX}`;
type Row = { id: number; env: string; what: string };

/** A TypeORM entity for `name`'s table. */
const entityOf = (name: string) =>
  new EntitySchema<Row>({
    name: 'Row',
    tableName: name,
    columns: {
      id: { type: Number, primary: true, generated: true },
      env: { type: String },
      what: { type: String },
    },
  });

/**
 * Registers one data layer's idioms on a store: `make(tableName)` wires the layer in `beforeAll`;
 * the table exists in both environments' stores (made and dropped by `store`).
 */
function library(
  name: string,
  store: {
    create(table: string): Promise<void>;
    drop(table: string): Promise<void>;
    rowsOf: (env: Env, table: string) => Promise<Row[]>;
  },
  make: (table: string) => Promise<Omit<DataLayer, 'rowsOf'> & { close(): Promise<unknown> }>,
) {
  describe(name, () => {
    const own = table(name.replace(/\W+/g, '_').toLowerCase());
    let layer: Awaited<ReturnType<typeof make>>;
    beforeAll(async () => {
      await store.create(own);
      layer = await make(own);
    });
    afterAll(async () => {
      await layer?.close();
      await store.drop(own);
    });
    dataLayerIdioms(() => ({
      insert: layer.insert,
      transaction: layer.transaction,
      rowsOf: (env) => store.rowsOf(env, own),
    }));
  });
}

describe('on @picop/pg', () => {
  const pair = useServerPair(() => startPostgres(), `${PG_HOST}:${PG_PORT}`);
  const login = { user: 'postgres', database: 'postgres' };
  const direct = {} as Record<Env, pg.Client>;
  const pool = () => new Pool({ host: '127.0.0.1', port: pair.port, ...login, max: 4 });
  beforeAll(async () => {
    direct.main = new pg.Client({ host: PG_HOST, port: PG_PORT, ...login });
    direct['feature-1'] = new pg.Client({ host: '127.0.0.1', port: pair.second.port, ...login });
    for (const c of Object.values(direct)) await c.connect();
  }, 120_000);
  afterAll(async () => {
    for (const c of Object.values(direct)) await c.end();
  });
  const store = {
    async create(name: string) {
      for (const c of Object.values(direct)) {
        await c.query(`CREATE TABLE ${name} (id serial PRIMARY KEY, env text, what text)`);
      }
    },
    async drop(name: string) {
      for (const c of Object.values(direct)) await c.query(`DROP TABLE IF EXISTS ${name}`);
    },
    rowsOf: async (env: Env, name: string) =>
      (await direct[env].query<Row>(`SELECT * FROM ${name}`)).rows,
  };

  library('Drizzle', store, async (name) => {
    const rows = pgTable(name, {
      id: serial('id').primaryKey(),
      env: text('env'),
      what: text('what'),
    });
    const db = drizzlePg({ client: pool() });
    return {
      insert: (env, what) => db.insert(rows).values({ env, what }),
      transaction: (env, what, fail) =>
        db.transaction(async (tx) => {
          await tx.insert(rows).values({ env, what });
          if (fail) throw ROLLED_BACK;
        }),
      close: () => db.$client.end(),
    };
  });

  library('Kysely', store, async (name) => {
    const db = new Kysely<Record<string, Omit<Row, 'id'>>>({
      dialect: new PostgresDialect({ pool: pool() }),
    });
    return {
      insert: (env, what) => db.insertInto(name).values({ env, what }).execute(),
      transaction: (env, what, fail) =>
        db.transaction().execute(async (tx) => {
          await tx.insertInto(name).values({ env, what }).execute();
          if (fail) throw ROLLED_BACK;
        }),
      close: () => db.destroy(),
    };
  });

  library('TypeORM', store, async (name) => {
    const entity = entityOf(name);
    const source = new DataSource({
      type: 'postgres',
      driver: picopPg,
      host: '127.0.0.1',
      port: pair.port,
      username: login.user,
      database: login.database,
      entities: [entity],
      poolSize: 4,
    });
    await source.initialize();
    return {
      insert: (env, what) => source.getRepository(entity).insert({ env, what }),
      transaction: (env, what, fail) =>
        source.transaction(async (manager) => {
          await manager.getRepository(entity).insert({ env, what });
          if (fail) throw ROLLED_BACK;
        }),
      close: () => source.destroy(),
    };
  });
});

describe('on @picop/mysql', () => {
  const pair = useServerPair(() => startMariadb(), `${MYSQL_HOST}:${MYSQL_PORT}`);
  const login = { user: 'root', password: '', database: 'test' };
  const direct = {} as Record<Env, mysql.Connection>;
  const address = () => ({ host: '127.0.0.1', port: pair.port, ...login, connectionLimit: 4 });
  beforeAll(async () => {
    direct.main = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, ...login });
    direct['feature-1'] = await mysql.createConnection({
      host: '127.0.0.1',
      port: pair.second.port,
      ...login,
    });
  }, 120_000);
  afterAll(async () => {
    for (const c of Object.values(direct)) await c.end();
  });
  const store = {
    async create(name: string) {
      for (const c of Object.values(direct)) {
        await c.query(
          `CREATE TABLE ${name} (id int AUTO_INCREMENT PRIMARY KEY, env varchar(32), what varchar(32))`,
        );
      }
    },
    async drop(name: string) {
      for (const c of Object.values(direct)) await c.query(`DROP TABLE IF EXISTS ${name}`);
    },
    async rowsOf(env: Env, name: string) {
      const [rows] = await direct[env].query(`SELECT * FROM ${name}`);
      return rows as Row[];
    },
  };

  library('Drizzle', store, async (name) => {
    const rows = mysqlTable(name, {
      id: int('id').autoincrement().primaryKey(),
      env: varchar('env', { length: 32 }),
      what: varchar('what', { length: 32 }),
    });
    const db = drizzleMysql({ client: mysqlPromisePool(address()) });
    return {
      insert: (env, what) => db.insert(rows).values({ env, what }),
      transaction: (env, what, fail) =>
        db.transaction(async (tx) => {
          await tx.insert(rows).values({ env, what });
          if (fail) throw ROLLED_BACK;
        }),
      close: () => db.$client.end(),
    };
  });

  library('Kysely', store, async (name) => {
    const db = new Kysely<Record<string, Omit<Row, 'id'>>>({
      dialect: new MysqlDialect({ pool: mysqlCallbackPool(address()) }),
    });
    return {
      insert: (env, what) => db.insertInto(name).values({ env, what }).execute(),
      transaction: (env, what, fail) =>
        db.transaction().execute(async (tx) => {
          await tx.insertInto(name).values({ env, what }).execute();
          if (fail) throw ROLLED_BACK;
        }),
      close: () => db.destroy(),
    };
  });

  library('TypeORM', store, async (name) => {
    const entity = entityOf(name);
    const source = new DataSource({
      type: 'mysql',
      driver: picopMysqlCallback,
      host: '127.0.0.1',
      port: pair.port,
      username: login.user,
      password: login.password,
      database: login.database,
      entities: [entity],
      poolSize: 4,
    });
    await source.initialize();
    return {
      insert: (env, what) => source.getRepository(entity).insert({ env, what }),
      transaction: (env, what, fail) =>
        source.transaction(async (manager) => {
          await manager.getRepository(entity).insert({ env, what });
          if (fail) throw ROLLED_BACK;
        }),
      close: () => source.destroy(),
    };
  });
});
