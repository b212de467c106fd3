export type { Address } from './address.js';
export { formatAddress, parseAddress } from './address.js';
export { createAdminServer } from './admin.js';
export type { ProxyConfig } from './config.js';
export { loadConfig } from './config.js';
export type { ProxyOptions, ProxyStatsSnapshot } from './PicopProxy.js';
export { createProxy, PicopProxy } from './PicopProxy.js';
export { RouteTable } from './RouteTable.js';
