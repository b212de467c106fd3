export { envIdProblem } from '@picop/codec';
export { baggageValues, withoutBaggageKey } from './baggage.js';
export {
  DEFAULT_BAGGAGE_KEY,
  DEFAULT_FIELD_NAME,
  DEFAULT_MAX_ENV_ID_LENGTH,
  MAX_ENV_ID_LENGTH,
} from './constants.js';
export type { EnvIdPropagatorOptions } from './EnvIdPropagator.js';
export { EnvIdPropagator } from './EnvIdPropagator.js';
export { getEnvId, setEnvId, withEnvId } from './env-id.js';
export type { GuardedSpan, PicopGuardOptions, UnroutedOperation } from './guard.js';
export { PicopGuard } from './guard.js';
export type { HeaderForContextOptions } from './picop-carrier.js';
export {
  contextFromFields,
  fieldsForContext,
  headerForContext,
  picopFieldsGetter,
  picopFieldsSetter,
} from './picop-carrier.js';
