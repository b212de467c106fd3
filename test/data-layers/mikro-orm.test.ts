// MikroORM 7 (PostgreSQL) through perEnvironment: one MikroORM (its own pg pool, made from its
// `driverOptions`) per environment, each connection starting with its environment's header; and a
// schema per environment on one PostgreSQL (MikroORM's `schema`). Each request forks the
// EntityManager of its environment's instance. MikroORM 7 needs Node 22.17 or later.

import { closePerEnvironment, type PerEnvironment, perEnvironment } from '@picop/net-wrap';
import { pgIsolation, pgStream } from '@picop/pg';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { dataLayerIdioms, ROLLED_BACK } from '../support/data-layer.js';
import type { Env } from '../support/environments.js';
import { useContextManager } from '../support/otel-and-tls.js';
import { useServerPair } from '../support/pair.js';
import { PG_HOST, PG_PORT, startPostgres } from '../support/servers.js';

useContextManager();
const TABLE = `mikro_${Date.now().toString(36)}`;
const login = { user: 'postgres', dbName: 'postgres' };
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const supported = major > 22 || (major === 22 && minor >= 17);
// Imported only where it runs (its engines field says Node 22.17).
const mikro = supported ? await import('@mikro-orm/postgresql') : undefined;
type Orm = InstanceType<NonNullable<typeof mikro>['MikroORM']>;

interface Row {
  id?: number;
  env: string;
  what: string;
}

const RowEntity = mikro?.EntitySchema
  ? new mikro.EntitySchema<Row>({
      name: 'Row',
      tableName: TABLE,
      properties: {
        id: { type: 'number', primary: true, autoincrement: true },
        env: { type: 'string' },
        what: { type: 'string' },
      },
    })
  : undefined;

/** One MikroORM with the test's entity, its connections as `options` say. */
function ormOf(options: Record<string, unknown>): Orm {
  if (mikro === undefined || RowEntity === undefined) throw new Error('MikroORM needs Node 22.17');
  return new mikro.MikroORM({ entities: [RowEntity], ...login, pool: { max: 4 }, ...options });
}

/** The idioms, each call forking the EntityManager of the active environment's MikroORM. */
function layerOf(orm: () => PerEnvironment<Orm>, rowsOf: (env: Env) => Promise<Row[]>) {
  return () => ({
    insert: async (env: Env, what: string) => {
      const em = orm().em.fork();
      em.create(RowEntity!, { env, what });
      await em.flush();
    },
    transaction: (env: Env, what: string, fail: boolean) =>
      orm()
        .em.fork()
        .transactional(async (em) => {
          em.create(RowEntity!, { env, what });
          await em.flush();
          if (fail) throw ROLLED_BACK;
        }),
    rowsOf,
  });
}

describe.skipIf(!supported)('MikroORM 7 on PostgreSQL, one MikroORM per environment', () => {
  const pair = useServerPair(() => startPostgres(), `${PG_HOST}:${PG_PORT}`);
  const direct = {} as Record<Env, pg.Client>;
  let orm: PerEnvironment<Orm>;

  beforeAll(async () => {
    const user = { user: login.user, database: login.dbName };
    direct.main = new pg.Client({ host: PG_HOST, port: PG_PORT, ...user });
    direct['feature-1'] = new pg.Client({ host: '127.0.0.1', port: pair.second.port, ...user });
    for (const c of Object.values(direct)) {
      await c.connect();
      await c.query(`CREATE TABLE ${TABLE} (id serial PRIMARY KEY, env text, what text)`);
    }
    // The recipe: MikroORM makes its pg pool with its driverOptions, whose stream sends the header.
    orm = perEnvironment(
      (env) =>
        ormOf({ host: '127.0.0.1', port: pair.port, driverOptions: { stream: pgStream(env) } }),
      { destroy: (instance) => instance.close() },
    );
  }, 120_000);
  afterAll(async () => {
    await closePerEnvironment(orm);
    for (const c of Object.values(direct)) {
      await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await c.end();
    }
  });

  dataLayerIdioms(
    layerOf(
      () => orm,
      async (env) => (await direct[env].query(`SELECT env, what FROM ${TABLE}`)).rows,
    ),
  );
});

describe.skipIf(!supported)(
  'MikroORM 7: a schema per environment on one PostgreSQL (no proxy)',
  () => {
    const SCHEMA = 'env_feature-1';
    const admin = new pg.Client({
      host: PG_HOST,
      port: PG_PORT,
      user: login.user,
      database: login.dbName,
    });
    let orm: PerEnvironment<Orm>;

    beforeAll(async () => {
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
      await admin.query(`CREATE SCHEMA "${SCHEMA}"`);
      for (const schema of ['public', SCHEMA]) {
        await admin.query(
          `CREATE TABLE "${schema}".${TABLE} (id serial PRIMARY KEY, env text, what text)`,
        );
      }
      orm = perEnvironment(
        (env) => {
          const { schema } = pgIsolation(env, { schema: (envId) => `env_${envId}` });
          return ormOf({ host: PG_HOST, port: PG_PORT, ...(schema !== undefined && { schema }) });
        },
        { destroy: (instance) => instance.close(), header: false },
      );
    });
    afterAll(async () => {
      await closePerEnvironment(orm);
      await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
      await admin.query(`DROP TABLE IF EXISTS public.${TABLE}`);
      await admin.end();
    });

    dataLayerIdioms(
      layerOf(
        () => orm,
        async (env) =>
          (
            await admin.query(
              `SELECT env, what FROM "${env === 'main' ? 'public' : SCHEMA}".${TABLE}`,
            )
          ).rows,
      ),
    );
  },
);
