export type { GatewayConfig } from './config.js';
export { loadGatewayConfig } from './config.js';
export type { GatewayMetricsOptions } from './metrics.js';
export { GatewayMetrics } from './metrics.js';
export type { GatewayLogger, GatewayOptions } from './PicopGateway.js';
export { createGateway, PicopGateway } from './PicopGateway.js';
export type { Selection, SelectionOptions } from './selection.js';
export { EnvIdSelector, signEnvId, TOKEN_HEADER } from './selection.js';
