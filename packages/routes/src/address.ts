import net from 'node:net';
import { PicopError } from '@picop/codec';

/** A TCP address. */
export interface Address {
  host: string;
  port: number;
}

/**
 * Parses `host:port`, `[v6]:port` or `:port` (host `defaultHost`).
 * Throws `ERR_PICOP_INVALID_ARG` naming `what` on anything else.
 */
export function parseAddress(
  value: unknown,
  what: string,
  { allowPortZero = false, defaultHost = '127.0.0.1' } = {},
): Address {
  if (typeof value === 'object' && value !== null && 'port' in value) {
    const { host, port } = value as { host?: unknown; port?: unknown };
    return checked(
      typeof host === 'string' && host !== '' ? host : defaultHost,
      String(port),
      value,
      what,
      allowPortZero,
    );
  }
  if (typeof value !== 'string') {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `${what} must be "host:port", got ${JSON.stringify(value)}`,
    );
  }
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value.trim());
  if (match === null) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `${what} must be "host:port", got ${JSON.stringify(value)}`,
    );
  }
  const host = match[1] ?? match[2] ?? '';
  return checked(host === '' ? defaultHost : host, match[3] as string, value, what, allowPortZero);
}

function checked(
  host: string,
  portText: string,
  original: unknown,
  what: string,
  allowPortZero: boolean,
): Address {
  const port = Number(portText);
  if (!Number.isInteger(port) || port < (allowPortZero ? 0 : 1) || port > 65535) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `${what} has an invalid port in ${JSON.stringify(original)}`,
    );
  }
  if (net.isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `${what} has an invalid host in ${JSON.stringify(original)}`,
    );
  }
  return { host, port };
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatAddress({ host, port }: Address): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
