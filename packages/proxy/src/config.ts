import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { PicopError } from '@picop/codec';
import { type Address, parseAddress } from './address.js';
import type { ProxyOptions } from './PicopProxy.js';

/** Everything the `picop-proxy` command is configured with. */
export interface ProxyConfig extends Omit<ProxyOptions, 'logger'> {
  /** Where the admin API listens (`"host:port"`; a bare `":port"` binds to 127.0.0.1). Off if unset. */
  admin?: string | Address;
  /** How long SIGTERM waits for open connections. @default 10000 */
  graceMs?: number;
  /** pino level. @default 'info' */
  logLevel?: string;
}

export const USAGE = `Usage: picop-proxy --listen HOST:PORT [options]

Routes TCP connections by the Env-Id in their PiCoP header.

Options (each also from an environment variable, and from a JSON file with --config):
  --listen HOST:PORT            where to accept connections              PICOP_PROXY_LISTEN
  --default HOST:PORT           route without header / Env-Id / route    PICOP_PROXY_DEFAULT
  --route ENV=HOST:PORT         a route; repeat for more                 PICOP_PROXY_ROUTES (ENV=HOST:PORT,...)
  --header required|optional    optional: plain clients go to --default  PICOP_PROXY_HEADER     (required)
  --propagate                   re-send the header to the destination    PICOP_PROXY_PROPAGATE  (off)
  --dialect spec|picop-go       header layout of the clients             PICOP_PROXY_DIALECT    (spec)
  --field NAME                  header field holding the Env-Id          PICOP_PROXY_FIELD      (Env-Id)
  --header-timeout MS           time allowed for a complete header       PICOP_PROXY_HEADER_TIMEOUT  (5000)
  --max-header-bytes N          longest header context accepted          PICOP_PROXY_MAX_HEADER_BYTES (4096)
  --connect-timeout MS          time allowed to reach a destination      PICOP_PROXY_CONNECT_TIMEOUT (5000)
  --admin [HOST:]PORT           admin HTTP API (loopback unless a host)  PICOP_PROXY_ADMIN      (off)
  --grace MS                    SIGTERM drains connections this long     PICOP_PROXY_GRACE      (10000)
  --log-level LEVEL             pino level: error, info, debug...        PICOP_PROXY_LOG_LEVEL  (info)
  --config FILE                 JSON with the keys listen, default, routes {env: "host:port"},
                                header, propagate, dialect, field, headerTimeoutMs, maxHeaderBytes,
                                connectTimeoutMs, admin, graceMs, logLevel
  --help                        this text

Example:
  picop-proxy --listen 0.0.0.0:9000 --default 10.0.0.5:3306 \\
    --route feature-1=10.0.0.6:3306 --admin 127.0.0.1:9001
`;

const FLAGS = {
  listen: { type: 'string' },
  default: { type: 'string' },
  route: { type: 'string', multiple: true },
  header: { type: 'string' },
  propagate: { type: 'boolean' },
  dialect: { type: 'string' },
  field: { type: 'string' },
  'header-timeout': { type: 'string' },
  'max-header-bytes': { type: 'string' },
  'connect-timeout': { type: 'string' },
  admin: { type: 'string' },
  grace: { type: 'string' },
  'log-level': { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean' },
} as const;

const bad = (message: string) => new PicopError('ERR_PICOP_INVALID_ARG', message);

/**
 * Reads the configuration from flags, environment variables and `--config`, in that order of
 * precedence. Returns `'help'` for `--help`. Throws `ERR_PICOP_INVALID_ARG` with a message that
 * names the flag at fault.
 */
export function loadConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): ProxyConfig | 'help' {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof FLAGS }>>;
  try {
    parsed = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false });
  } catch (err) {
    throw bad(`${(err as Error).message} (see --help)`);
  }
  const flags = parsed.values;
  if (flags.help) return 'help';

  const file = flags.config ?? env.PICOP_PROXY_CONFIG;
  const fromFile = file === undefined ? {} : readConfigFile(file);
  const pick = (flag: string | undefined, envName: string, key: string): unknown =>
    flag ?? env[envName] ?? fromFile[key];

  const routes: Record<string, string | Address> = { ...(fileRoutes(fromFile.routes) ?? {}) };
  const routeList = flags.route ?? env.PICOP_PROXY_ROUTES?.split(',').filter(Boolean);
  for (const item of routeList ?? []) {
    const at = item.indexOf('=');
    if (at <= 0) throw bad(`--route must be ENV=HOST:PORT, got ${JSON.stringify(item)}`);
    routes[item.slice(0, at)] = item.slice(at + 1);
  }

  const listen = pick(flags.listen, 'PICOP_PROXY_LISTEN', 'listen');
  if (listen === undefined) throw bad('--listen is required (see --help)');
  const header = pick(flags.header, 'PICOP_PROXY_HEADER', 'header') ?? 'required';
  if (header !== 'required' && header !== 'optional')
    throw bad(`--header must be required or optional, got ${JSON.stringify(header)}`);
  const dialect = pick(flags.dialect, 'PICOP_PROXY_DIALECT', 'dialect') ?? 'spec';
  if (dialect !== 'spec' && dialect !== 'picop-go')
    throw bad(`--dialect must be spec or picop-go, got ${JSON.stringify(dialect)}`);
  const admin = pick(flags.admin, 'PICOP_PROXY_ADMIN', 'admin');

  const config: ProxyConfig = {
    listen: parseAddress(listen, '--listen', { allowPortZero: true }),
    defaultRoute: optional(pick(flags.default, 'PICOP_PROXY_DEFAULT', 'default'), (v) =>
      parseAddress(v, '--default'),
    ),
    routes,
    header,
    propagate:
      flags.propagate ??
      bool(env.PICOP_PROXY_PROPAGATE, 'PICOP_PROXY_PROPAGATE') ??
      fromFile.propagate === true,
    dialect,
    fieldName: optional(pick(flags.field, 'PICOP_PROXY_FIELD', 'field'), String),
    headerTimeoutMs: int(
      pick(flags['header-timeout'], 'PICOP_PROXY_HEADER_TIMEOUT', 'headerTimeoutMs'),
      '--header-timeout',
      1,
    ),
    maxHeaderBytes: int(
      pick(flags['max-header-bytes'], 'PICOP_PROXY_MAX_HEADER_BYTES', 'maxHeaderBytes'),
      '--max-header-bytes',
      0,
      65535,
    ),
    connectTimeoutMs: int(
      pick(flags['connect-timeout'], 'PICOP_PROXY_CONNECT_TIMEOUT', 'connectTimeoutMs'),
      '--connect-timeout',
      1,
    ),
    admin: optional(admin, (v) =>
      parseAddress(/^\d+$/.test(String(v)) ? `:${v}` : v, '--admin', { allowPortZero: true }),
    ),
    graceMs: int(pick(flags.grace, 'PICOP_PROXY_GRACE', 'graceMs'), '--grace', 0),
    logLevel: optional(pick(flags['log-level'], 'PICOP_PROXY_LOG_LEVEL', 'logLevel'), String),
  };
  return config;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw bad(`--config: cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const value = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error('not an object');
    return value;
  } catch (err) {
    throw bad(`--config: ${file} is not a JSON object: ${(err as Error).message}`);
  }
}

function fileRoutes(value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  // Both {"env": "host:port"} and the Go proxy's [{"env_id", "destination"}].
  if (Array.isArray(value)) {
    return Object.fromEntries(
      value.map((r: { env_id?: unknown; destination?: unknown }) => {
        if (typeof r?.env_id !== 'string' || typeof r.destination !== 'string') {
          throw bad('--config: each route needs string "env_id" and "destination"');
        }
        return [r.env_id, r.destination];
      }),
    );
  }
  if (typeof value !== 'object' || value === null)
    throw bad('--config: "routes" must be an object or a list');
  return value as Record<string, string>;
}

function optional<T>(value: unknown, fn: (v: string) => T): T | undefined {
  return value === undefined ? undefined : fn(value as string);
}

function int(
  value: unknown,
  flag: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw bad(
      `${flag} must be an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function bool(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (['1', 'true', 'yes'].includes(value)) return true;
  if (['0', 'false', 'no', ''].includes(value)) return false;
  throw bad(`${name} must be true or false, got ${JSON.stringify(value)}`);
}
