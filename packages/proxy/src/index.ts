export type { AdminOptions } from './admin.js';
export { createAdminServer } from './admin.js';
export type { ProxyConfig } from './config.js';
export type { ControllerRegistration } from './controller.js';
export { registerWithController } from './controller.js';
export type { ProxyLogger, ProxyOptions, ProxyStatsSnapshot } from './PicopProxy.js';
export { createProxy, PicopProxy } from './PicopProxy.js';
