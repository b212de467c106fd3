// For the @picop wrapper packages only (mysql, redis, amqp, pg, mqtt): the shared wrapper skeleton.
// Not public API: it may change in any release.

export {
  coverLibrary,
  guarded,
  inRouted,
  markActiveSpanRouted,
} from '@picop/propagator/internal';
export { checkBounds } from './BoundedPool.js';
export { headerOf } from './client.js';
export {
  DEFAULT_HEADER_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_INITIAL_DELAY_MS,
  DEFAULT_MAX_POOLS,
} from './constants.js';
export type { MessageFields, SelectiveOptions } from './messages.js';
export { messageFieldsGetter, selectionOf, withContextFields } from './messages.js';
export { routedObject } from './perEnvironment.js';
export type { NodeCallback, PoolParts } from './skeleton.js';
export {
  perEnvironmentOnly,
  promisify,
  routeMethods,
  routeOr,
  routeResult,
  unsupportedVersion,
  wrapperPools,
} from './skeleton.js';
export type { PicopWrapperOptions, StoreNameRules } from './wrapper-options.js';
export {
  baseHeader,
  emitError,
  explainRefusal,
  fallbackEnvId,
  forwardEvents,
  ISOLATED_KEYS,
  isolatedKeyPrefix,
  isolationName,
  picopOrigins,
  refuseDirect,
  routeOnce,
  sendsHeader,
  splitOptions,
  storeName,
  withFallbackEnvId,
} from './wrapper-options.js';
