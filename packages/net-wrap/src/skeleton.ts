import { createRequire } from 'node:module';
import { PicopError } from '@picop/codec';
import { guarded, inRouted } from '@picop/propagator/internal';
import type { Routes } from '@picop/routes';
import { checkBounds } from './BoundedPool.js';
import { ContextPools, type ContextPoolsOptions } from './ContextPools.js';
import { fallbackEnvId, type PicopWrapperOptions, sendsHeader } from './wrapper-options.js';

/**
 * What every wrapper's `pools` getter shows of its per-environment clients: counters for metrics,
 * the routes it follows, and each environment's client for who wants a per-environment view.
 */
export interface PicopPools<T> {
  /** Environments with a client of their own now (the baseline's, the wrapper itself, is not). */
  readonly size: number;
  /** Clients created so far. */
  readonly created: number;
  /** Clients closed to stay within `maxPools`. */
  readonly evicted: number;
  /** Clients closed after `idleTimeoutMs` unused. */
  readonly expired: number;
  /** With `picop.routes`: the routes followed (`failures` counts reloads that failed). */
  readonly routes: Routes | undefined;
  /** Each environment's client held now, with its Env-Id. */
  byEnvId(): IterableIterator<[envId: string | undefined, client: T]>;
}

/** The names the per-environment cap had before 0.2.0, by wrapper. */
type OldCapName = 'maxClients' | 'maxConnections';

const warned = new Set<string>();

/**
 * `picop.maxPools`, or the wrapper's old name for it (read for one more minor version, with a
 * `DeprecationWarning` once per process). Both at once is `ERR_PICOP_INVALID_ARG`.
 */
function maxPoolsOf(
  picop: PicopWrapperOptions,
  label: string,
  oldName: OldCapName | undefined,
): number | undefined {
  const old =
    oldName === undefined ? undefined : ((picop as Record<string, unknown>)[oldName] as number);
  if (old === undefined) return picop.maxPools;
  if (picop.maxPools !== undefined) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `${label}: \`picop.${oldName}\` is the old name of \`picop.maxPools\`: give only \`maxPools\``,
    );
  }
  if (!warned.has(`${label}:${oldName}`)) {
    warned.add(`${label}:${oldName}`);
    process.emitWarning(
      `${label}: \`picop.${oldName}\` is deprecated and will be removed in 0.3.0: use \`picop.maxPools\``,
      { type: 'DeprecationWarning', code: 'PICOP_DEP_MAX_POOLS' },
    );
  }
  return old;
}

/** The library-specific parts of a wrapper's pools: how to make, close and judge a client. */
export type PoolParts<T> = Pick<
  ContextPoolsOptions<T>,
  'create' | 'destroy' | 'isIdle' | 'prepare' | 'base'
>;

/**
 * The first step of every wrapper, before the library's constructor runs: checks the `picop`
 * options (the cap, the idle timeout, the fallback Env-Id, the routes) and makes the
 * per-environment pools, which open nothing until used. A bad option throws here, so a wrapper
 * whose constructor fails leaves no socket behind. `base` is a function when the wrapper is
 * itself the baseline's client (it does not exist yet). Close the pools if the library's
 * constructor throws after this.
 */
export function wrapperPools<T>(
  picop: PicopWrapperOptions,
  label: string,
  parts: PoolParts<T>,
  oldName?: OldCapName,
): ContextPools<T> {
  const max = maxPoolsOf(picop, label, oldName);
  checkBounds(max, picop.idleTimeoutMs);
  fallbackEnvId(picop.envId);
  return new ContextPools<T>({
    envId: picop.envId,
    propagator: picop.propagator,
    dialect: picop.dialect,
    routes: picop.routes,
    idleTimeoutMs: picop.idleTimeoutMs,
    max,
    header: sendsHeader(picop),
    ...parts,
  });
}

/**
 * Makes the methods `names` of `object` (a connection of an environment's pool, a pipeline or a
 * query builder it made, handed to the user) run as routed work, for `PicopGuard`: the spans the
 * library's instrumentation starts in them count as PiCoP's. Returns `object`.
 */
export function routeMethods<T>(object: T, names: readonly string[]): T {
  const target = object as Record<string, unknown>;
  for (const name of names) {
    const own = target[name];
    // A frozen object (or a proxy that refuses) stays as it is: only the guard's view is lost.
    if (typeof own !== 'function' || !Object.isExtensible(target)) continue;
    Reflect.defineProperty(target, name, {
      value: function routed(this: unknown, ...args: unknown[]): unknown {
        return inRouted(own as (...a: unknown[]) => unknown, this, ...args);
      },
      writable: true,
      configurable: true,
    });
  }
  return object;
}

/**
 * What a routed call returned, with `names` routed as {@link routeMethods} does, while a guard
 * runs (a pipeline's `exec`, a lazy query's `then`): nothing to do for each call otherwise.
 */
export function routeResult<T>(result: T, names: readonly string[]): T {
  return guarded() && typeof result === 'object' && result !== null && !(result instanceof Promise)
    ? routeMethods(result, names)
    : result;
}

/** A Node-style callback: an error, or `null`/`undefined` and a value (and what else it takes). */
// biome-ignore lint/suspicious/noExplicitAny: the libraries' callbacks take varied extra arguments
export type NodeCallback = (err: any, ...values: any[]) => void;

/**
 * Routes one call: `acquire()`'s client, or, when routing fails (a full pool, unread routes, a
 * closed client), `undefined` after handing the error to `callback` on the next tick, with
 * `rest` after it (a library's callbacks may take more: node-postgres's `done`). Without a
 * callback the error is thrown, as the library throws its own.
 */
export function routeOr<T>(
  acquire: () => T,
  callback: NodeCallback | undefined,
  ...rest: unknown[]
): T | undefined {
  try {
    return acquire();
  } catch (err) {
    if (callback === undefined) throw err;
    process.nextTick(callback, err, ...rest);
    return undefined;
  }
}

/**
 * pg-pool's pattern for methods that take a callback or return a promise: the caller's callback
 * and no promise, or a callback that settles the returned promise.
 */
export function promisify<T>(callback: NodeCallback | undefined): {
  callback: NodeCallback;
  result: Promise<T> | undefined;
} {
  if (callback !== undefined) return { callback, result: undefined };
  let settle!: NodeCallback;
  const result = new Promise<T>((resolve, reject) => {
    settle = (err: unknown, value: T) => (err ? reject(err) : resolve(value));
  });
  return { callback: settle, result };
}

/** What {@link unsupportedVersion} reports. */
export interface UnsupportedLibrary {
  /** The wrapper (`'@picop/redis'`). */
  label: string;
  /** The wrapped library (`'ioredis'`). */
  library: string;
  /** What the installed release lacks. */
  missing: readonly string[];
  /** The releases that work (`'^5.3.0 || ^6.0.0'`). */
  range: string;
  /** The installed version, or where to resolve `<library>/package.json` from (`import.meta.url`). */
  installed: { version: string } | { from: string };
}

/**
 * The error of a wrapper whose library lacks the internals it uses (a release outside the tested
 * range): `ERR_PICOP_UNSUPPORTED`, naming the library, its installed version, what is missing and
 * the range that works. Thrown when the first client is made, never later as a `TypeError`.
 */
export function unsupportedVersion({
  label,
  library,
  missing,
  range,
  installed,
}: UnsupportedLibrary): PicopError {
  let version = '(version unknown)';
  if ('version' in installed) version = installed.version;
  else {
    try {
      version = (createRequire(installed.from)(`${library}/package.json`) as { version: string })
        .version;
    } catch {}
  }
  return new PicopError(
    'ERR_PICOP_UNSUPPORTED',
    `${label} does not support ${library} ${version}: it lacks ${missing.join(', ')}. Install ${library}@${range}, or set \`picop: false\``,
  );
}

/**
 * The error of a data layer that takes a wrapper's connections or pool and would serve several
 * requests' work on one of them, in one environment (Sequelize's own pool, Prisma's batches):
 * `ERR_PICOP_UNSUPPORTED`, saying why and naming the recipe, one instance of the data layer per
 * environment (`recipe`: how its instance gets its connections).
 */
export function perEnvironmentOnly(
  label: string,
  library: string,
  why: string,
  recipe: string,
): PicopError {
  return new PicopError(
    'ERR_PICOP_UNSUPPORTED',
    `${label} cannot serve ${library} for several environments: ${why}. Make one ${library} per environment with perEnvironment() from @picop/net-wrap, ${recipe} (${label}'s README, "${library}")`,
  );
}
