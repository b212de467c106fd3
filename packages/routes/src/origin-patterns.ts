import { PicopError } from '@picop/codec';

// [scheme://]host[:port]: a host of letters, digits, '.', '-', '_' and '*', or an IPv6 literal in
// brackets; a port, or '*'.
const PATTERN = /^(?:(https?):\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.*-]+)(?::(\d{1,5}|\*))?$/;

const escapeRegExp = (s: string) => s.replace(/[.[\]]/g, '\\$&');

/** The regular expression of one origin pattern, over origins as `originOf` writes them. */
function patternSource(pattern: string): string {
  const match = PATTERN.exec(pattern.trim());
  const port = match?.[3];
  if (match === null || (port !== undefined && port !== '*' && Number(port) > 65_535)) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `Origin pattern ${JSON.stringify(pattern)} is not of the form [http(s)://]host[:port]: a host name (with * for any part of it, as in *.svc.cluster.local), an IPv4 or [IPv6] address, and a port or *`,
    );
  }
  const [, scheme, host = ''] = match;
  const hostSource = escapeRegExp(host.toLowerCase()).replace(/\*/g, '[^/]+');
  const portSource = port === undefined || port === '*' ? '\\d+' : String(Number(port));
  return `${scheme ?? 'https?'}://${hostSource}:${portSource}`;
}

/**
 * A test of origins (`http://orders:8080`, as `originOf` writes them) against patterns:
 * `orders:8080`, `*.svc.cluster.local` (any port), `*.internal:*`, `https://payments:443`, `*`.
 * Host names compare case-insensitively; `*` matches any part of a host. Throws
 * `ERR_PICOP_INVALID_ARG` for a pattern of another form.
 */
export function originMatcher(patterns: readonly string[]): (origin: string) => boolean {
  if (patterns.length === 0) return () => false;
  const re = new RegExp(`^(?:${patterns.map(patternSource).join('|')})$`);
  return (origin) => re.test(origin);
}
