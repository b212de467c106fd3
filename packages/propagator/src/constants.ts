/** Baggage key the Env-Id is kept under. */
export const DEFAULT_BAGGAGE_KEY = 'env-id';

/** Name of the carrier field (HTTP header, PiCoP field) that carries the Env-Id. */
export const DEFAULT_FIELD_NAME = 'Env-Id';

/** Longest Env-Id accepted, in characters. */
export const DEFAULT_MAX_ENV_ID_LENGTH = 128;
