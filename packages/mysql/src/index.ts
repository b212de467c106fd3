import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import {
  fallbackEnvId,
  headerOf,
  perEnvironmentOnly,
  routeMethods,
  routeOnce,
  splitOptions,
  withFallbackEnvId,
} from '@picop/net-wrap/internal';
import { getEnvId } from '@picop/propagator';
import mysql from 'mysql2/promise';
import {
  isolatedDatabase,
  PicopCallbackPool,
  type PicopPool,
  ROUTED_METHODS,
  withHeaderStream,
} from './PicopPool.js';
import type { PicopConnectionOptions, PicopMysqlOptions, PicopPoolOptions } from './types.js';

export { mysqlStream, PicopPool } from './PicopPool.js';
export type {
  MysqlIsolation,
  PicopConnectionOptions,
  PicopMysqlOptions,
  PicopPoolOptions,
} from './types.js';

/**
 * A drop-in for `mysql2/promise`'s `createPool`, with one pool per environment: every query runs
 * on the pool of the active context's Env-Id, whose connections start with that environment's
 * PiCoP header. With `picop: false` (or `PICOP_DISABLED=1`) it returns mysql2's own pool.
 *
 * @example
 * import { createPool } from '@picop/mysql';
 * const pool = createPool({ host: 'mysql-proxy', user: 'app', database: 'shop', connectionLimit: 10 });
 * const [rows] = await pool.query('SELECT * FROM orders WHERE id = ?', [id]); // this request's environment
 */
export function createPool(config: PicopPoolOptions | string): PicopPool {
  return new PicopCallbackPool(config).promise();
}

/**
 * `mysql2/promise`'s `createConnection` for the active context: one connection whose socket starts
 * with its Env-Id's PiCoP header.
 */
export function createConnection(
  config: PicopConnectionOptions | string,
): Promise<mysql.Connection> {
  const options: PicopConnectionOptions = typeof config === 'string' ? { uri: config } : config;
  const { enabled, picop, library } = splitOptions<PicopMysqlOptions, PicopConnectionOptions>(
    options,
  );
  if (!enabled) return mysql.createConnection(library);
  // Sequelize 6 (`dialectModule: @picop/mysql`) makes each connection with its bound type cast,
  // and pools them across requests: refused at once, before it mistakes the promise for one.
  if (typeof options.typeCast === 'function' && options.typeCast.name === 'bound _typecast') {
    throw perEnvironmentOnly(
      '@picop/mysql',
      'Sequelize',
      "it keeps the connections it makes in a pool of its own, and one made in a request's environment would serve later requests of any environment",
      'plain mysql2 and `dialectOptions: { stream: mysqlStream(env, address) }`',
    );
  }
  const ctx = withFallbackEnvId(fallbackEnvId(picop.envId), context.active());
  const envId = getEnvId(ctx);
  const { route, header: sends } = routeOnce(picop, envId, '@picop/mysql createConnection');
  const header = sends
    ? headerOf({ context: ctx, propagator: picop.propagator, dialect: picop.dialect })
    : Buffer.alloc(0);
  const { isolate } = picop;
  const database =
    isolate === undefined || envId === undefined ? undefined : isolatedDatabase(isolate, envId);
  const own = {
    ...options,
    ...(route && { host: route.host, port: route.port }),
    ...(database !== undefined && { database }),
  };
  const create = isolate?.create;
  if (create === undefined || envId === undefined || database === undefined)
    return mysql.createConnection(withHeaderStream(own, header)).then(routed);
  // The isolated environment's database first, outside its context.
  return context
    .with(ROOT_CONTEXT, () => create({ envId, database }))
    .then(() => mysql.createConnection(withHeaderStream(own, header)))
    .then(routed);
}

/** A connection whose queries count as routed work (`PicopGuard`). */
function routed(connection: mysql.Connection): mysql.Connection {
  // mysql2's promise connection sends through its callback connection (untyped), `.connection`.
  routeMethods(
    (connection as mysql.Connection & { connection: object }).connection,
    ROUTED_METHODS,
  );
  return connection;
}
