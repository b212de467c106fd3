// For the @picop wrapper packages only (mysql, redis, amqp, pg, mqtt): the shared wrapper skeleton.
// Not public API: it may change in any release.

export type { MessageFields } from './messages.js';
export { messageFieldsGetter, selectionOf, withContextFields } from './messages.js';
export type { StoreNameRules } from './wrapper-options.js';
export {
  baseHeader,
  emitError,
  explainRefusal,
  fallbackEnvId,
  forwardEvents,
  isolationName,
  picopOrigins,
  refuseDirect,
  routeOnce,
  sendsHeader,
  splitOptions,
  storeName,
  withFallbackEnvId,
} from './wrapper-options.js';
