// Sequelize 6 through perEnvironment: one Sequelize (its own connection pool) per environment,
// on plain pg / mysql2 whose `stream` sends the environment's header; and a schema per
// environment on one PostgreSQL (the model's `schema`). Sequelize keeps the connections it makes
// in its own pool, so one Sequelize shared by environments would give one request's connection to
// another: `dialectModule: @picop/pg` or `@picop/mysql` is refused.

import * as picopMysql from '@picop/mysql';
import { mysqlStream } from '@picop/mysql';
import { type PerEnvironment, perEnvironment } from '@picop/net-wrap';
import * as picopPg from '@picop/pg';
import { pgIsolation, pgStream } from '@picop/pg';
import { DataTypes, type Options, Sequelize } from 'sequelize';
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
import type { Env } from '../support/environments.js';
import { useContextManager } from '../support/otel-and-tls.js';
import { runId } from '../support/run-id.js';
import { PG_HOST, PG_PORT } from '../support/servers.js';

useContextManager();
const TABLE = `sequelize_${runId()}`;
const pgLogin = { username: 'postgres', database: 'postgres' };
const mysqlLogin = { username: 'root', password: '', database: 'test' };

/** A Sequelize with the test's model, `Row`, in `schema` (its default when undefined). */
function sequelizeWith(options: Options, schema?: string): Sequelize {
  const sequelize = new Sequelize({ logging: false, pool: { max: 4 }, ...options });
  sequelize.define(
    'Row',
    { env: DataTypes.STRING, what: DataTypes.STRING },
    { tableName: TABLE, timestamps: false, ...(schema !== undefined && { schema }) },
  );
  return sequelize;
}

/** One Sequelize per environment, made by `options(env)`, used through `perEnvironment`. */
function sequelizes(make: Parameters<typeof perEnvironment<Sequelize>>[0], header = true) {
  return usePerEnvironment(() =>
    perEnvironment(make, { destroy: (sequelize) => sequelize.close(), header }),
  );
}

/** The idioms of test/support/data-layer.ts on a per-environment Sequelize. */
function idioms(db: () => PerEnvironment<Sequelize>, rowsOf: (env: Env) => Promise<Row[]>) {
  dataLayerIdioms(() => ({
    insert: (env, what) => db().model('Row').create({ env, what }),
    transaction: (env, what, fail) =>
      db().transaction(async (transaction) => {
        await db().model('Row').create({ env, what }, { transaction });
        if (fail) throw ROLLED_BACK;
      }),
    rowsOf,
  }));
}

/** One Sequelize for every environment, as `dialectModule` wires it, is refused at its first query. */
async function refused(options: Options, recipe: string) {
  const shared = sequelizeWith(options);
  try {
    const error = await shared
      .model('Row')
      .count()
      .then(
        () => undefined,
        (err: { original?: unknown }) => err.original ?? err,
      );
    expect(error).toMatchObject({
      code: 'ERR_PICOP_UNSUPPORTED',
      message: expect.stringContaining(recipe),
    });
  } finally {
    await shared.close();
  }
}

describe('Sequelize 6 on PostgreSQL, one Sequelize per environment', () => {
  const stores = usePgStores(TABLE);
  const proxy = () => ({ dialect: 'postgres' as const, host: '127.0.0.1', port: stores.port });
  const db = sequelizes((env) =>
    sequelizeWith({ ...proxy(), ...pgLogin, dialectOptions: { stream: pgStream(env) } }),
  );
  idioms(db, (env) => stores.rowsOf(env));

  it('dialectModule: @picop/pg (one Sequelize for every environment) is refused, naming the recipe', () =>
    refused(
      { ...proxy(), ...pgLogin, dialectModule: picopPg },
      'dialectOptions: { stream: pgStream(env) }',
    ));
});

describe('Sequelize 6 on MySQL, one Sequelize per environment', () => {
  const stores = useMysqlStores(TABLE);
  const proxy = () => ({ host: '127.0.0.1', port: stores.port });
  const db = sequelizes((env) =>
    sequelizeWith({
      dialect: 'mysql',
      ...mysqlLogin,
      dialectOptions: { stream: mysqlStream(env, proxy()) },
    }),
  );
  idioms(db, (env) => stores.rowsOf(env));

  it('dialectModule: @picop/mysql (one Sequelize for every environment) is refused, naming the recipe', () =>
    refused(
      { dialect: 'mysql', ...proxy(), ...mysqlLogin, dialectModule: picopMysql },
      'mysqlStream(env, address)',
    ));
});

describe('Sequelize 6: a schema per environment on one PostgreSQL (no proxy)', () => {
  const store = useSchemaPerEnvironment(TABLE);
  const db = sequelizes(
    (env) =>
      sequelizeWith(
        { dialect: 'postgres', host: PG_HOST, port: PG_PORT, ...pgLogin },
        pgIsolation(env, isolateBySchema).schema,
      ),
    false,
  );
  idioms(db, store.rowsOf);
});
