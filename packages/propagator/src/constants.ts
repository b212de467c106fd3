/** Baggage key the Env-Id is kept under. */
export const DEFAULT_BAGGAGE_KEY = 'env-id';

/** Name of the carrier field (HTTP header, PiCoP field) that carries the Env-Id. */
export const DEFAULT_FIELD_NAME = 'Env-Id';

/** Longest Env-Id `EnvIdPropagator` accepts from a carrier, by default, in characters. */
export const DEFAULT_MAX_ENV_ID_LENGTH = 128;

export { MAX_ENV_ID_LENGTH } from '@picop/codec';
