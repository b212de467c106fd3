import type { GatewayConfig } from './config.js';

/**
 * The defaults of picop-gateway, one place: the code applies them, and `--help` and the README's
 * settings table show them (`SETTINGS`).
 */
export const DEFAULTS = {
  header: 'env-id',
  allow: ['*'],
  cookieMaxAge: 604_800,
  maxPools: 64,
  maxEnvRequests: 256,
  timeoutMs: 60_000,
  graceMs: 10_000,
  logLevel: 'info',
} as const satisfies Partial<GatewayConfig>;
