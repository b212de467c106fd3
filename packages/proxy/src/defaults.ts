import { DEFAULT_HEADER_TIMEOUT_MS } from '@picop/codec';
import type { ProxyConfig } from './config.js';

/**
 * The defaults of picop-proxy, one place: the code applies them, and `--help` and the README's
 * settings table show them (`SETTINGS`).
 */
export const DEFAULTS = {
  header: 'required',
  propagate: false,
  dialect: 'spec',
  fieldName: 'Env-Id',
  headerTimeoutMs: DEFAULT_HEADER_TIMEOUT_MS,
  connectTimeoutMs: 5000,
  idleTimeoutMs: 0,
  rerouteQuietMs: 100,
  maxConnections: 10_000,
  graceMs: 10_000,
  logLevel: 'info',
} as const satisfies Partial<ProxyConfig>;
