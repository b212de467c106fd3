/** Baggage key the Env-Id is kept under. */
export const DEFAULT_BAGGAGE_KEY = 'env-id';

/** Name of the carrier field (HTTP header, PiCoP field) that carries the Env-Id. */
export const DEFAULT_FIELD_NAME = 'Env-Id';

/** Longest Env-Id `EnvIdPropagator` accepts from a carrier, by default, in characters. */
export const DEFAULT_MAX_ENV_ID_LENGTH = 128;

/**
 * Longest valid Env-Id, in characters: the one rule the helpers, the pools and the proxy share.
 * `Env-Id:` and the value fit the codec's default 4096-byte header. `EnvIdPropagator`'s
 * `maxLength` (an edge's policy) may be lower, never higher.
 */
export const MAX_ENV_ID_LENGTH = 4096 - 'Env-Id:'.length;
