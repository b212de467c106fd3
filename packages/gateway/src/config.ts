import { loadSettings, readSecret, type Setting } from '@picop/cli-kit';
import { PicopError } from '@picop/codec';
import { type Address, parseAddress } from '@picop/routes';
import { DEFAULTS } from './defaults.js';
import type { GatewayOptions } from './PicopGateway.js';

/** Everything the `picop-gateway` command is configured with: the config file's keys. */
export interface GatewayConfig
  extends Omit<GatewayOptions, 'logger' | 'registry' | 'token' | 'cookieKey'> {
  /** File holding the token (else `PICOP_GATEWAY_TOKEN`). */
  tokenFile?: string;
  /** File holding the cookie key (else `PICOP_GATEWAY_COOKIE_KEY`). */
  cookieKeyFile?: string;
  /** Where `/healthz` and `/metrics` listen (`"host:port"`, or a port on 127.0.0.1). Off if unset. */
  admin?: string | Address;
  /** How long SIGTERM waits for requests in flight. @default 10000 */
  graceMs?: number;
  /** pino level. @default 'info' */
  logLevel?: string;
}

/** The settings of `picop-gateway`: `--help` and the README's table come from here. */
export const SETTINGS = [
  {
    key: 'listen',
    flag: 'listen',
    env: 'PICOP_GATEWAY_LISTEN',
    type: 'string',
    arg: 'HOST:PORT',
    help: 'where to accept HTTP requests',
    required: true,
  },
  {
    key: 'upstream',
    flag: 'upstream',
    env: 'PICOP_GATEWAY_UPSTREAM',
    type: 'string',
    arg: 'HOST:PORT',
    help: "where requests go: the service's picop-proxy",
  },
  {
    key: 'routes',
    flag: 'route',
    env: 'PICOP_GATEWAY_ROUTES',
    type: 'routes',
    arg: 'ENV=HOST:PORT',
    help: 'an environment reached directly; repeat for more',
  },
  {
    key: 'header',
    flag: 'header',
    env: 'PICOP_GATEWAY_HEADER',
    type: 'string',
    arg: 'NAME',
    help: 'request header with the Env-Id',
    default: String(DEFAULTS.header),
  },
  {
    key: 'responseHeader',
    flag: 'response-header',
    env: 'PICOP_GATEWAY_RESPONSE_HEADER',
    type: 'string',
    arg: 'NAME',
    help: 'response header naming the Env-Id each request ran in (empty: the baseline)',
    default: 'off',
  },
  {
    key: 'ignoreBaggage',
    flag: 'ignore-baggage',
    env: 'PICOP_GATEWAY_IGNORE_BAGGAGE',
    type: 'boolean',
    help: 'do not read env-id from the baggage header',
    default: 'off',
  },
  {
    key: 'cookie',
    flag: 'cookie',
    env: 'PICOP_GATEWAY_COOKIE',
    type: 'string',
    arg: 'NAME',
    help: 'cookie with the Env-Id',
    default: 'off',
  },
  {
    key: 'hostPattern',
    flag: 'host-pattern',
    env: 'PICOP_GATEWAY_HOST_PATTERN',
    type: 'string',
    arg: 'PATTERN',
    help: 'host whose * label is the Env-Id: *.preview.example.com',
    default: 'off',
  },
  {
    key: 'allow',
    flag: 'allow',
    env: 'PICOP_GATEWAY_ALLOW',
    type: 'list',
    arg: 'PATTERN',
    help: 'Env-Ids a request may pick (* globs); repeat for more',
    default: DEFAULTS.allow.join(','),
  },
  {
    key: 'tokenFile',
    flag: 'token-file',
    env: 'PICOP_GATEWAY_TOKEN_FILE',
    type: 'string',
    arg: 'FILE',
    help: 'secret a request shows in picop-token to leave the baseline (or $PICOP_GATEWAY_TOKEN)',
    default: 'off',
  },
  {
    key: 'cookieKeyFile',
    flag: 'cookie-key-file',
    env: 'PICOP_GATEWAY_COOKIE_KEY_FILE',
    type: 'string',
    arg: 'FILE',
    help: 'HMAC key that signs the cookie (or $PICOP_GATEWAY_COOKIE_KEY)',
    default: 'off',
  },
  {
    key: 'cookieMaxAge',
    flag: 'cookie-max-age',
    env: 'PICOP_GATEWAY_COOKIE_MAX_AGE',
    type: 'integer',
    min: 1,
    arg: 'SECONDS',
    help: 'how long a signed cookie proves its Env-Id after signing',
    default: String(DEFAULTS.cookieMaxAge),
  },
  {
    key: 'maxPools',
    flag: 'max-pools',
    env: 'PICOP_GATEWAY_MAX_POOLS',
    type: 'integer',
    min: 1,
    help: "most environments with a connection pool (the baseline's is not counted)",
    default: String(DEFAULTS.maxPools),
  },
  {
    key: 'maxEnvRequests',
    flag: 'max-env-requests',
    env: 'PICOP_GATEWAY_MAX_ENV_REQUESTS',
    type: 'integer',
    min: 1,
    help: "most requests of one environment at once (the baseline's are not capped)",
    default: String(DEFAULTS.maxEnvRequests),
  },
  {
    key: 'connections',
    flag: 'connections',
    env: 'PICOP_GATEWAY_CONNECTIONS',
    type: 'integer',
    min: 1,
    help: 'most connections per environment and destination',
    default: 'unlimited',
  },
  {
    key: 'timeoutMs',
    flag: 'timeout',
    env: 'PICOP_GATEWAY_TIMEOUT',
    type: 'integer',
    min: 1,
    arg: 'MS',
    help: "time for the upstream's headers, and between body chunks",
    default: String(DEFAULTS.timeoutMs),
  },
  {
    key: 'admin',
    flag: 'admin',
    env: 'PICOP_GATEWAY_ADMIN',
    type: 'string',
    arg: '[HOST:]PORT',
    help: '/healthz and /metrics (127.0.0.1 unless a host)',
    default: 'off',
  },
  {
    key: 'graceMs',
    flag: 'grace',
    env: 'PICOP_GATEWAY_GRACE',
    type: 'integer',
    arg: 'MS',
    help: 'SIGTERM lets requests finish this long',
    default: String(DEFAULTS.graceMs),
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: 'PICOP_GATEWAY_LOG_LEVEL',
    type: 'string',
    arg: 'LEVEL',
    help: 'pino level: error, warn, info, debug',
    default: String(DEFAULTS.logLevel),
  },
] as const satisfies readonly Setting<keyof GatewayConfig>[];

const bad = (message: string) => new PicopError('ERR_PICOP_INVALID_ARG', message);

/**
 * The gateway's options from flags, environment variables and `--config`, with the secrets read
 * from their files or variables. Returns `'help'` / `'version'` for those flags. Throws
 * `ERR_PICOP_INVALID_ARG` naming the setting at fault.
 */
export function loadGatewayConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): (GatewayConfig & Pick<GatewayOptions, 'token' | 'cookieKey'>) | 'help' | 'version' {
  const values = loadSettings(SETTINGS, argv, env, [
    'PICOP_GATEWAY_TOKEN',
    'PICOP_GATEWAY_COOKIE_KEY',
  ]);
  if (typeof values === 'string') return values;
  const config = values as unknown as GatewayConfig;
  if (config.upstream === undefined && config.routes === undefined) {
    throw bad('--upstream (or --route) is required (see --help)');
  }
  const admin = config.admin;
  return {
    ...config,
    listen: parseAddress(config.listen, '--listen', { allowPortZero: true }),
    upstream:
      config.upstream === undefined ? undefined : parseAddress(config.upstream, '--upstream'),
    admin:
      admin === undefined
        ? undefined
        : parseAddress(/^\d+$/.test(String(admin)) ? `:${admin}` : admin, '--admin', {
            allowPortZero: true,
          }),
    token: readSecret(config.tokenFile, 'PICOP_GATEWAY_TOKEN', env, '--token-file'),
    cookieKey: readSecret(
      config.cookieKeyFile,
      'PICOP_GATEWAY_COOKIE_KEY',
      env,
      '--cookie-key-file',
    ),
  };
}
