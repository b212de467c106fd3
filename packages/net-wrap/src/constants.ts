/** TCP keep-alive initial delay of the sockets `connect` opens, unless told otherwise. */
export const DEFAULT_KEEP_ALIVE_INITIAL_DELAY_MS = 30_000;

export { DEFAULT_HEADER_TIMEOUT_MS } from '@picop/codec';

/** Most per-context clients a `ContextPools` holds. */
export const DEFAULT_MAX_POOLS = 32;

/** How long a per-context client may go unused before `ContextPools` closes it. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** Environment variable with the Env-Id of work that runs without a request context. */
export const ENV_ID_VARIABLE = 'PICOP_ENV_ID';

/**
 * Environment variable with the origins that speak PiCoP, for the HTTP clients' `origins`:
 * patterns separated by commas or spaces (`PICOP_ORIGINS='*.svc.cluster.local'`).
 */
export const ORIGINS_VARIABLE = 'PICOP_ORIGINS';
