import { PicopError } from '@picop/codec';
import { coverLibrary, guarded, inRouted } from '@picop/propagator/internal';
import type { RoutesOptions } from '@picop/routes';
import { ContextPools, type PoolContext } from './ContextPools.js';
import type { PicopPools } from './skeleton.js';
import { routeMethods } from './skeleton.js';
import type { PicopWrapperOptions } from './wrapper-options.js';

/** Options of {@link perEnvironment}. */
export interface PerEnvironmentOptions<T>
  extends Pick<
    PicopWrapperOptions,
    'maxPools' | 'idleTimeoutMs' | 'envId' | 'propagator' | 'dialect'
  > {
  /** Closes an instance: on eviction, idle timeout, a route change and `close()`. */
  destroy(instance: T): void | Promise<void>;
  /**
   * Whether an instance may be closed now (nothing in flight): a busy one is never evicted or
   * expired.
   * @default () => true
   */
  isIdle?(instance: T): boolean;
  /**
   * Proxyless routing: each environment's `PoolContext.route` comes from these routes (its
   * instance connects there); a change of routes closes the instances whose route changed.
   */
  routes?: RoutesOptions;
  /**
   * Whether the instances' connections carry the PiCoP header (`PoolContext.header` empty when
   * not): through a picop-proxy they must; routed or isolated ones do not.
   * @default true, or false with `routes`
   */
  header?: boolean;
}

/** What {@link perEnvironment} returns: the library's object, plus the pools and `close()`. */
export type PerEnvironment<T> = T & {
  /** The instances of the environments: counters and `byEnvId()`. */
  readonly [PICOP_POOLS]: PicopPools<T>;
};

/** The key of {@link perEnvironment}'s pools on the object it returns. */
export const PICOP_POOLS: unique symbol = Symbol.for('picop.pools');

/** Closes every instance of a {@link perEnvironment} object; later use throws. */
export function closePerEnvironment(object: PerEnvironment<object>): Promise<void> {
  const pools = object[PICOP_POOLS];
  if (!(pools instanceof ContextPools)) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      'closePerEnvironment() takes what perEnvironment() returned',
    );
  }
  return pools.close();
}

type Path = readonly PropertyKey[];

/**
 * One instance of a library per environment, behind one object that stands for it: for libraries
 * that pool connections or batch queries themselves (knex, Prisma, Sequelize, pg-promise), whose
 * pools would otherwise mix the environments of the requests they serve. `create` makes the
 * instance of an environment the first time it is used (its `PoolContext` says its Env-Id, the
 * header its connections must start with, and its route); the returned object forwards every
 * call, property read and `await` to the instance of the environment active at that moment (a
 * method taken at start-up, `const q = db.query`, still routes each call; so does a nested
 * object, `prisma.user.findMany`). What a call returns (a query builder, a transaction, a
 * stream) belongs to the instance that made it. Bounded like every wrapper (`maxPools`, idle
 * instances closed, the baseline's never evicted or refused).
 *
 * Not supported, with `ERR_PICOP_UNSUPPORTED`: setting, defining or deleting its properties (each
 * environment has its own instance: configure them in `create`).
 *
 * @example
 * const db = perEnvironment(
 *   (env) => knex({ client: 'pg', connection: { host: 'postgres-proxy', stream: pgStream(env) } }),
 *   { destroy: (k) => k.destroy() },
 * );
 * await db('orders').insert(order); // in the active request's environment
 */
export function perEnvironment<T extends object>(
  create: (environment: PoolContext) => T,
  options: PerEnvironmentOptions<T>,
): PerEnvironment<T> {
  // Plain JavaScript may leave them out: each instance must close when evicted.
  if (typeof create !== 'function' || typeof options?.destroy !== 'function') {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      'perEnvironment(create, { destroy }) takes the function that makes an instance and, in its options, the one that closes it (knex: `{ destroy: (k) => k.destroy() }`)',
    );
  }
  coverLibrary('perEnvironment');
  const pools = new ContextPools<T>({
    create,
    destroy: options.destroy,
    isIdle: options.isIdle,
    max: options.maxPools,
    idleTimeoutMs: options.idleTimeoutMs,
    envId: options.envId,
    propagator: options.propagator,
    dialect: options.dialect,
    routes: options.routes,
    header: options.header ?? options.routes === undefined,
  });
  return view(pools, []) as PerEnvironment<T>;
}

const refuse = (what: string) => () => {
  throw new PicopError(
    'ERR_PICOP_UNSUPPORTED',
    `perEnvironment(): ${what} is not supported: each environment has its own instance (configure them in create)`,
  );
};

/** The value at `path` of the active environment's instance, and what holds it (its `this`). */
function resolve(pools: ContextPools<object>, path: Path): { value: unknown; holder: unknown } {
  let holder: unknown;
  let value: unknown = pools.acquire();
  for (const key of path) {
    holder = value;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return { value, holder };
}

type Fn = (...args: unknown[]) => unknown;

const RUNS_QUERY = ['then', 'catch', 'finally', 'stream', 'pipe', 'asCallback'];
const markedOf = new WeakMap<object, object>();
const unmarked = new WeakMap<object, object>();

/**
 * While a `PicopGuard` runs, what a call on an instance returns (a query builder, a model class,
 * a stream: objects and functions, not data) runs its later work as routed work: a knex builder
 * runs its query when awaited, a Sequelize model when its method is called, in the caller's
 * context. A thenable has the methods that run it routed in place; anything else stands behind a
 * proxy whose calls, and what they return, are routed, each on the object itself (`this` is never
 * the proxy). Without a guard, the value itself.
 */
export function routedObject(value: unknown): unknown {
  if (!guarded()) return value;
  // A lazy query (a knex builder, a Prisma query) keeps its identity, which its library may
  // check: the methods that run it are routed in place.
  if (isLazyQuery(value)) return routeMethods(value, RUNS_QUERY);
  if (!isMarkable(value)) return value;
  let proxy = markedOf.get(value);
  if (proxy === undefined) {
    proxy = new Proxy(value, {
      get(target, key) {
        const member = Reflect.get(target, key);
        return key === 'constructor' ? member : routedObject(member);
      },
      apply(target, thisArg, args) {
        const self = (thisArg !== null && unmarked.get(thisArg as object)) || thisArg;
        return routedObject(inRouted(target as Fn, self, ...args));
      },
    });
    markedOf.set(value, proxy);
    unmarked.set(proxy, value);
  }
  return proxy;
}

function isLazyQuery(value: unknown): value is object {
  return (
    typeof value === 'object' &&
    value !== null &&
    !(value instanceof Promise) &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** Functions, and objects of a class (builders, streams): not promises, arrays or plain data. */
function isMarkable(value: unknown): value is object {
  if (typeof value === 'function') return true;
  if (typeof value !== 'object' || value === null || value instanceof Promise) return false;
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto !== null && proto !== Object.prototype;
}

// The object standing for `path` of the active instance: property reads resolve now; calls
// resolve at the call, so a method or nested object kept from an earlier context still routes.
function view(pools: ContextPools<object>, path: Path): unknown {
  const target = (() => {}) as unknown as object;
  const children = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(_target, key) {
      if (path.length === 0 && key === PICOP_POOLS) return pools;
      const { value, holder } = resolve(pools, [...path, key]);
      if (value === null || (typeof value !== 'object' && typeof value !== 'function'))
        return value;
      // Symbol-keyed members (Symbol.asyncIterator, util.inspect.custom) and promises' `then`:
      // the active instance's own, bound to it.
      if (typeof key === 'symbol' || key === 'then') {
        return typeof value === 'function'
          ? (...args: unknown[]) => inRouted(value as Fn, holder, ...args)
          : value;
      }
      let child = children.get(key);
      if (child === undefined) {
        child = view(pools, [...path, key]);
        children.set(key, child);
      }
      return child;
    },
    apply(_target, _this, args) {
      const { value, holder } = resolve(pools, path);
      if (typeof value !== 'function') {
        throw new PicopError(
          'ERR_PICOP_INVALID_ARG',
          `${path.map(String).join('.') || 'it'} is not a function`,
        );
      }
      return routedObject(inRouted(value as Fn, holder, ...args));
    },
    has(_target, key) {
      return key in (resolve(pools, path).value as object);
    },
    ownKeys() {
      const { value } = resolve(pools, path);
      return [...new Set([...Reflect.ownKeys(value as object), ...Reflect.ownKeys(target)])];
    },
    getOwnPropertyDescriptor(_target, key) {
      const own = Reflect.getOwnPropertyDescriptor(target, key);
      if (own !== undefined) return own;
      const { value } = resolve(pools, path);
      const descriptor = Reflect.getOwnPropertyDescriptor(value as object, key);
      return descriptor && { ...descriptor, configurable: true };
    },
    set: refuse('setting a property'),
    defineProperty: refuse('defining a property'),
    deleteProperty: refuse('deleting a property'),
  });
}
