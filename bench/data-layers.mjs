// knex and Prisma 7 through perEnvironment (one instance per environment, its connections made
// with pgStream) against the same library used plainly, all through one picop-proxy (optional
// mode: plain pg needs no header) to one PostgreSQL: 32 in flight, a primary-key read, one
// environment and four interleaved. Client CPU per query is this process's. Rounds interleaved,
// after a warm-up round.
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { closePerEnvironment, perEnvironment } from '@picop/net-wrap';
import { pgStream } from '@picop/pg';
import { setEnvId } from '@picop/propagator';
import { PrismaPg } from '@prisma/adapter-pg';
import knex from 'knex';
import pg from 'pg';
import { PrismaClient } from '../test/data-layers/prisma/generated/client.ts';
import { table } from './lib.mjs';
import { bestOf, closedLoop, env, resultRow, startPicopProxy, stopAll } from './load.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const PG = { host: '127.0.0.1', port: env('PG_PORT', 5432) };
const login = { user: 'postgres', database: 'postgres' };
const N = env('BENCH_DATA_LAYERS_OPS', 20_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);
const ROUNDS = env('BENCH_ROUNDS', 2);
const POOL = 10; // connections per pool, plain or per environment
const ENVS = ['feature-1', 'feature-2', 'feature-3', 'feature-4'];
const TABLE = 'picop_prisma_rows'; // the Prisma model's table (test/data-layers/prisma)

const { port } = await startPicopProxy([
  '--default',
  `${PG.host}:${PG.port}`,
  '--header',
  'optional',
  ...ENVS.flatMap((e) => ['--route', `${e}=${PG.host}:${PG.port}`]),
]);
const viaProxy = { ...login, host: '127.0.0.1', port };
const CONTEXTS = ENVS.map((e) => setEnvId(context.active(), e));

const setup = new pg.Client({ ...login, ...PG });
await setup.connect();
await setup.query(`DROP TABLE IF EXISTS ${TABLE}`);
await setup.query(
  `CREATE TABLE ${TABLE} (id serial PRIMARY KEY, env text NOT NULL, what text NOT NULL)`,
);
await setup.query(
  `INSERT INTO ${TABLE} (env, what) SELECT 'main', 'row ' || i FROM generate_series(1, 100) i`,
);

const fmtVs = (r, base) =>
  `${(r.opsPerSec / base.opsPerSec).toFixed(2)}x, ${(r.cpuUsPerOp / base.cpuUsPerOp).toFixed(2)}x`;
const knexOf = (connection) => knex({ client: 'pg', connection, pool: { min: 0, max: POOL } });
const prismaOf = (config) => new PrismaClient({ adapter: new PrismaPg({ ...config, max: POOL }) });

const LIBRARIES = {
  knex: {
    plain: () => knexOf(viaProxy),
    perEnvironment: () =>
      perEnvironment((e) => knexOf({ ...viaProxy, stream: pgStream(e) }), {
        destroy: (k) => k.destroy(),
      }),
    read: (db, i) =>
      db(TABLE)
        .where({ id: (i % 100) + 1 })
        .first(),
    close: (db, wrapped) => (wrapped ? closePerEnvironment(db) : db.destroy()),
  },
  'Prisma 7': {
    plain: () => prismaOf(viaProxy),
    perEnvironment: () =>
      perEnvironment((e) => prismaOf({ ...viaProxy, stream: pgStream(e) }), {
        destroy: (p) => p.$disconnect(),
      }),
    read: (db, i) => db.row.findUnique({ where: { id: (i % 100) + 1 } }),
    close: (db, wrapped) => (wrapped ? closePerEnvironment(db) : db.$disconnect()),
  },
};

/** One instance per environment made by hand, no perEnvironment: what separating costs alone. */
function byHand(library) {
  const instances = CONTEXTS.map(() => library.plain());
  return {
    read: (i) => library.read(instances[i % 4], i),
    close: () => Promise.all(instances.map((db) => library.close(db, false))),
  };
}

/** `N` reads at `INFLIGHT`, read `i` in the context `CONTEXTS[i % environments]`. */
async function run(db, environments) {
  // Every environment's instance and a connection each, before the clock starts.
  await Promise.all(CONTEXTS.map((ctx, i) => context.with(ctx, () => db.read(i))));
  const r = await closedLoop(N, INFLIGHT, (i) =>
    context.with(CONTEXTS[i % environments], async () => {
      // Awaited inside the context: a query builder runs when awaited.
      await db.read(i);
    }),
  );
  await db.close();
  return r;
}

const rows = [];
for (const [name, library] of Object.entries(LIBRARIES)) {
  const one = () => {
    const db = library.plain();
    return { read: (i) => library.read(db, i), close: () => library.close(db, false) };
  };
  const wrapped = () => {
    const db = library.perEnvironment();
    return { read: (i) => library.read(db, i), close: () => library.close(db, true) };
  };
  const cases = {
    [`plain ${name}`]: () => run(one(), 1),
    'perEnvironment, 1 environment': () => run(wrapped(), 1),
    [`4 plain ${name} instances by hand, interleaved`]: () => run(byHand(library), 4),
    'perEnvironment, 4 environments interleaved': () => run(wrapped(), 4),
  };
  const best = await bestOf(cases, ROUNDS, env('BENCH_WARMUP', 1));
  // The 4-environment rows against both: one plain instance, and 4 made by hand (what
  // separating the environments costs the library itself: Prisma batches less, say).
  const plain = best.get(`plain ${name}`);
  const byHandResult = best.get(`4 plain ${name} instances by hand, interleaved`);
  for (const [label, r] of best) {
    const row = resultRow(label, r, plain);
    rows.push([...row, label.startsWith('perEnvironment, 4') ? fmtVs(r, byHandResult) : '']);
  }
}
await setup.query(`DROP TABLE IF EXISTS ${TABLE}`);
await setup.end();
stopAll();
table(
  `data layers: a primary-key read, ${INFLIGHT} in flight, through picop-proxy (best of ${ROUNDS} interleaved rounds after a warm-up; latencies in ms)`,
  [
    'client',
    'ops/s',
    'p50',
    'p99',
    'client CPU us/op',
    'vs plain',
    'CPU vs plain',
    'ops, CPU vs 4 by hand',
  ],
  rows,
);
process.exit(0);
