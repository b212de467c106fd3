// The data layers that take our pools as they are: Drizzle, Kysely and TypeORM on @picop/pg and
// @picop/mysql. Each borrows a connection from the pool for a query or a transaction, in the
// context of the request that runs it, and keeps none across requests: the pool routes each one.
// Two environments interleaved in one tick, transactions, every row read back from its server.

import { createPool as mysqlPromisePool } from '@picop/mysql';
import * as picopMysqlCallback from '@picop/mysql/callback';
import * as picopPg from '@picop/pg';
import { int, mysqlTable, varchar } from 'drizzle-orm/mysql-core';
import { drizzle as drizzleMysql } from 'drizzle-orm/mysql2';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { pgTable, serial, text } from 'drizzle-orm/pg-core';
import { Kysely, MysqlDialect, PostgresDialect } from 'kysely';
import { DataSource, type DataSourceOptions, EntitySchema } from 'typeorm';
import { afterAll, beforeAll, describe } from 'vitest';
import {
  type DataLayer,
  dataLayerIdioms,
  ROLLED_BACK,
  type Row,
  type Stores,
  useMysqlStores,
  usePgStores,
} from '../support/data-layer.js';
import { useContextManager } from '../support/otel-and-tls.js';
import { runId } from '../support/run-id.js';

useContextManager();
const SUFFIX = runId();
const LIBRARIES = ['drizzle', 'kysely', 'typeorm'] as const;
const tableOf = (library: (typeof LIBRARIES)[number]) => `${library}_${SUFFIX}`;
const TABLES = LIBRARIES.map(tableOf) as [string, ...string[]];

type Layer = Omit<DataLayer, 'rowsOf'> & { close(): Promise<unknown> };
type Insert = (db: Kysely<Record<string, Row>>, table: string, row: Row) => Promise<unknown>;

/** Registers `library`'s idioms on `stores`: `make()` wires it (in `beforeAll`). */
function library(
  name: (typeof LIBRARIES)[number],
  stores: Stores<unknown>,
  make: (table: string) => Promise<Layer> | Layer,
) {
  describe(name, () => {
    let layer: Layer;
    beforeAll(async () => {
      layer = await make(tableOf(name));
    });
    afterAll(() => layer?.close());
    dataLayerIdioms(() => ({
      insert: (env, what) => layer.insert(env, what),
      transaction: (env, what, fail) => layer.transaction(env, what, fail),
      rowsOf: (env) => stores.rowsOf(env, tableOf(name)),
    }));
  });
}

/** Kysely on `dialect`: the same in both stores. */
function kyselyOn(dialect: PostgresDialect | MysqlDialect, table: string): Layer {
  const db = new Kysely<Record<string, Row>>({ dialect });
  const insert: Insert = (on, into, row) => on.insertInto(into).values(row).execute();
  return {
    insert: (env, what) => insert(db, table, { env, what }),
    transaction: (env, what, fail) =>
      db.transaction().execute(async (tx) => {
        await insert(tx, table, { env, what });
        if (fail) throw ROLLED_BACK;
      }),
    close: () => db.destroy(),
  };
}

/** TypeORM on `options` (its `driver`: this repository's module): the same in both stores. */
async function typeormOn(options: DataSourceOptions, table: string): Promise<Layer> {
  const entity = new EntitySchema<Row & { id: number }>({
    name: 'Row',
    tableName: table,
    columns: {
      id: { type: Number, primary: true, generated: true },
      env: { type: String },
      what: { type: String },
    },
  });
  const source = new DataSource({ ...options, entities: [entity] });
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
}

describe('on @picop/pg', () => {
  const stores = usePgStores(...TABLES);
  const login = { user: 'postgres', database: 'postgres' };
  const pool = () => new picopPg.Pool({ host: '127.0.0.1', port: stores.port, ...login, max: 4 });

  library('drizzle', stores, (name) => {
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
  library('kysely', stores, (name) => kyselyOn(new PostgresDialect({ pool: pool() }), name));
  library('typeorm', stores, (name) =>
    typeormOn(
      {
        type: 'postgres',
        driver: picopPg,
        host: '127.0.0.1',
        port: stores.port,
        username: login.user,
        database: login.database,
        poolSize: 4,
      },
      name,
    ),
  );
});

describe('on @picop/mysql', () => {
  const stores = useMysqlStores(...TABLES);
  const login = { user: 'root', password: '', database: 'test' };
  const address = () => ({ host: '127.0.0.1', port: stores.port, ...login, connectionLimit: 4 });

  library('drizzle', stores, (name) => {
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
  library('kysely', stores, (name) =>
    kyselyOn(new MysqlDialect({ pool: picopMysqlCallback.createPool(address()) }), name),
  );
  library('typeorm', stores, (name) =>
    typeormOn(
      {
        type: 'mysql',
        driver: picopMysqlCallback,
        host: '127.0.0.1',
        port: stores.port,
        username: login.user,
        password: login.password,
        database: login.database,
        poolSize: 4,
      },
      name,
    ),
  );
});
