// MikroORM 7 (PostgreSQL) through perEnvironment: one MikroORM (its own pg pool, made from its
// `driverOptions`) per environment, each connection starting with its environment's header; and a
// schema per environment on one PostgreSQL (MikroORM's `schema`). Each request forks the
// EntityManager of its environment's instance. MikroORM 7 needs Node 22.17 or later.

import { type PerEnvironment, perEnvironment } from '@picop/net-wrap';
import { pgIsolation, pgStream } from '@picop/pg';
import { describe } from 'vitest';
import {
  dataLayerIdioms,
  isolateBySchema,
  ROLLED_BACK,
  type Row,
  usePerEnvironment,
  usePgStores,
  useSchemaPerEnvironment,
} from '../support/data-layer.js';
import type { Env } from '../support/environments.js';
import { useContextManager } from '../support/otel-and-tls.js';
import { runId } from '../support/run-id.js';
import { PG_HOST, PG_PORT } from '../support/servers.js';

useContextManager();
const TABLE = `mikro_${runId()}`;
const login = { user: 'postgres', dbName: 'postgres' };
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const supported = major > 22 || (major === 22 && minor >= 17);
// Imported only where it runs (its engines field says Node 22.17).
const mikro = supported ? await import('@mikro-orm/postgresql') : undefined;
type Orm = InstanceType<NonNullable<typeof mikro>['MikroORM']>;

const RowEntity = mikro?.EntitySchema
  ? new mikro.EntitySchema<Row & { id?: number }>({
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
  const stores = usePgStores(TABLE);
  // The recipe: MikroORM makes its pg pool with its driverOptions, whose stream sends the header.
  const orm = usePerEnvironment(() =>
    perEnvironment(
      (env) =>
        ormOf({ host: '127.0.0.1', port: stores.port, driverOptions: { stream: pgStream(env) } }),
      { destroy: (instance) => instance.close() },
    ),
  );
  dataLayerIdioms(layerOf(orm, (env) => stores.rowsOf(env)));
});

describe.skipIf(!supported)(
  'MikroORM 7: a schema per environment on one PostgreSQL (no proxy)',
  () => {
    const store = useSchemaPerEnvironment(TABLE);
    const orm = usePerEnvironment(() =>
      perEnvironment(
        (env) => {
          const { schema } = pgIsolation(env, isolateBySchema);
          return ormOf({ host: PG_HOST, port: PG_PORT, ...(schema !== undefined && { schema }) });
        },
        { destroy: (instance) => instance.close(), header: false },
      ),
    );
    dataLayerIdioms(layerOf(orm, store.rowsOf));
  },
);
