export type { GatewayConfig } from './config.js';
export type { GatewayMetrics, GatewayMetricsOptions } from './metrics.js';
export type { GatewayLogger, GatewayOptions } from './PicopGateway.js';
export { createGateway, PicopGateway } from './PicopGateway.js';
export type { Selection, SelectionOptions } from './selection.js';
export { signEnvId, TOKEN_HEADER } from './selection.js';
