export type { PicopAgentOptions } from './agent.js';
export { createAgent, createHttpsAgent } from './agent.js';
export type { ContextPoolsOptions, PoolContext } from './ContextPools.js';
export { ContextPools } from './ContextPools.js';
export type { PicopConnectOptions, PicopSocketOptions, PicopTlsConnectOptions } from './client.js';
export { connect, connectTls, headerOf } from './client.js';
export {
  DEFAULT_HEADER_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_INITIAL_DELAY_MS,
  DEFAULT_MAX_POOLS,
  ENV_ID_VARIABLE,
  ORIGINS_VARIABLE,
} from './constants.js';
export type { SelectiveOptions } from './messages.js';
export type { ReadHeaderOptions } from './readHeader.js';
export { readHeader } from './readHeader.js';
export type { AcceptPicopOptions } from './server.js';
export { acceptPicop, contextOfSocket } from './server.js';
export type { PicopWrapperOptions } from './wrapper-options.js';
export { DISABLED_VARIABLE } from './wrapper-options.js';
