// Sequelize 6 through perEnvironment: one Sequelize (its own connection pool) per environment,
// on plain pg / mysql2 whose `stream` sends the environment's header. Sequelize keeps the
// connections it makes in its own pool, so one Sequelize shared by environments would give one
// request's connection to another: `dialectModule: @picop/pg` or `@picop/mysql` is refused.

import * as picopMysql from '@picop/mysql';
import { mysqlStream } from '@picop/mysql';
import { closePerEnvironment, type PerEnvironment, perEnvironment } from '@picop/net-wrap';
import * as picopPg from '@picop/pg';
import { pgIsolation, pgStream } from '@picop/pg';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { DataTypes, type Options, Sequelize } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataLayerIdioms, ROLLED_BACK } from '../support/data-layer.js';
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
const TABLE = `sequelize_${Date.now().toString(36)}`;
const pgLogin = { user: 'postgres', database: 'postgres' };
const mysqlLogin = { user: 'root', password: '', database: 'test' };

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

/** The idioms of test/support/data-layer.ts on a per-environment Sequelize. */
function layerOf(
  db: PerEnvironment<Sequelize>,
  rowsOf: (env: Env) => Promise<Array<{ env: string; what: string }>>,
) {
  return {
    insert: (env: Env, what: string) => db.model('Row').create({ env, what }),
    transaction: (env: Env, what: string, fail: boolean) =>
      db.transaction(async (transaction) => {
        await db.model('Row').create({ env, what }, { transaction });
        if (fail) throw ROLLED_BACK;
      }),
    rowsOf,
  };
}

describe('Sequelize 6 on PostgreSQL, one Sequelize per environment', () => {
  const pair = useServerPair(() => startPostgres(), `${PG_HOST}:${PG_PORT}`);
  const direct = {} as Record<Env, pg.Client>;
  let db: PerEnvironment<Sequelize>;

  beforeAll(async () => {
    direct.main = new pg.Client({ host: PG_HOST, port: PG_PORT, ...pgLogin });
    direct['feature-1'] = new pg.Client({ host: '127.0.0.1', port: pair.second.port, ...pgLogin });
    for (const c of Object.values(direct)) {
      await c.connect();
      await c.query(`CREATE TABLE ${TABLE} (id serial PRIMARY KEY, env text, what text)`);
    }
    db = perEnvironment(
      (env) =>
        sequelizeWith({
          dialect: 'postgres',
          host: '127.0.0.1',
          port: pair.port,
          username: pgLogin.user,
          database: pgLogin.database,
          dialectOptions: { stream: pgStream(env) },
        }),
      { destroy: (sequelize) => sequelize.close() },
    );
  }, 120_000);
  afterAll(async () => {
    await closePerEnvironment(db);
    for (const c of Object.values(direct)) {
      await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await c.end();
    }
  });

  dataLayerIdioms(() =>
    layerOf(db, async (env) => (await direct[env].query(`SELECT env, what FROM ${TABLE}`)).rows),
  );

  it('dialectModule: @picop/pg (one Sequelize for every environment) is refused, naming the recipe', async () => {
    const shared = sequelizeWith({
      dialect: 'postgres',
      dialectModule: picopPg,
      host: '127.0.0.1',
      port: pair.port,
      username: pgLogin.user,
      database: pgLogin.database,
    });
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
        message: expect.stringContaining('dialectOptions: { stream: pgStream(env) }'),
      });
    } finally {
      await shared.close();
    }
  });
});

describe('Sequelize 6 on MySQL, one Sequelize per environment', () => {
  const pair = useServerPair(() => startMariadb(), `${MYSQL_HOST}:${MYSQL_PORT}`);
  const direct = {} as Record<Env, mysql.Connection>;
  let db: PerEnvironment<Sequelize>;
  const proxy = () => ({ host: '127.0.0.1', port: pair.port });

  beforeAll(async () => {
    direct.main = await mysql.createConnection({
      host: MYSQL_HOST,
      port: MYSQL_PORT,
      ...mysqlLogin,
    });
    direct['feature-1'] = await mysql.createConnection({
      host: '127.0.0.1',
      port: pair.second.port,
      ...mysqlLogin,
    });
    for (const c of Object.values(direct)) {
      await c.query(
        `CREATE TABLE ${TABLE} (id int AUTO_INCREMENT PRIMARY KEY, env varchar(32), what varchar(32))`,
      );
    }
    db = perEnvironment(
      (env) =>
        sequelizeWith({
          dialect: 'mysql',
          username: mysqlLogin.user,
          database: mysqlLogin.database,
          dialectOptions: { stream: mysqlStream(env, proxy()) },
        }),
      { destroy: (sequelize) => sequelize.close() },
    );
  }, 120_000);
  afterAll(async () => {
    await closePerEnvironment(db);
    for (const c of Object.values(direct)) {
      await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await c.end();
    }
  });

  dataLayerIdioms(() =>
    layerOf(db, async (env) => {
      const [rows] = await direct[env].query(`SELECT env, what FROM ${TABLE}`);
      return rows as Array<{ env: string; what: string }>;
    }),
  );

  it('dialectModule: @picop/mysql (one Sequelize for every environment) is refused, naming the recipe', async () => {
    const shared = sequelizeWith({
      dialect: 'mysql',
      dialectModule: picopMysql,
      ...proxy(),
      username: mysqlLogin.user,
      database: mysqlLogin.database,
    });
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
        message: expect.stringContaining('mysqlStream(env, address)'),
      });
    } finally {
      await shared.close();
    }
  });
});

describe('Sequelize 6: a schema per environment on one PostgreSQL (no proxy)', () => {
  const SCHEMA = 'env_feature-1';
  const admin = new pg.Client({ host: PG_HOST, port: PG_PORT, ...pgLogin });
  let db: PerEnvironment<Sequelize>;

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    await admin.query(`CREATE SCHEMA "${SCHEMA}"`);
    for (const schema of ['public', SCHEMA]) {
      await admin.query(
        `CREATE TABLE "${schema}".${TABLE} (id serial PRIMARY KEY, env text, what text)`,
      );
    }
    db = perEnvironment(
      (env) =>
        sequelizeWith(
          {
            dialect: 'postgres',
            host: PG_HOST,
            port: PG_PORT,
            username: pgLogin.user,
            database: pgLogin.database,
          },
          pgIsolation(env, { schema: (envId) => `env_${envId}` }).schema,
        ),
      { destroy: (sequelize) => sequelize.close(), header: false },
    );
  });
  afterAll(async () => {
    await closePerEnvironment(db);
    await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    await admin.query(`DROP TABLE IF EXISTS public.${TABLE}`);
    await admin.end();
  });

  dataLayerIdioms(() =>
    layerOf(db, async (env) => {
      const schema = env === 'main' ? 'public' : SCHEMA;
      return (await admin.query(`SELECT env, what FROM "${schema}".${TABLE}`)).rows;
    }),
  );
});
