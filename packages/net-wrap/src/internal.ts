// For the @picop wrapper packages only (mysql, redis, amqp): the shared wrapper skeleton.
// Not public API: it may change in any release.
export {
  baseContext,
  baseHeader,
  emitError,
  fallbackEnvId,
  forwardEvents,
  picopEnabled,
  splitOptions,
  withFallbackEnvId,
} from './wrapper-options.js';
