import { loadSettings, type Setting, usage } from '@picop/cli-kit';
import { DEFAULT_MAX_LENGTH, PICOP_GO_MAX_LENGTH } from '@picop/codec';
import { type Address, parseAddress } from '@picop/routes';
import { DEFAULTS } from './defaults.js';
import type { ProxyOptions } from './PicopProxy.js';

/** Everything the `picop-proxy` command is configured with: the config file's keys. */
export interface ProxyConfig extends Omit<ProxyOptions, 'logger'> {
  /** Where the admin API listens (`"host:port"`; a bare `":port"` binds to 127.0.0.1). Off if unset. */
  admin?: string | Address;
  /** How long SIGTERM waits for open connections. @default 10000 */
  graceMs?: number;
  /** pino level. @default 'info' */
  logLevel?: string;
  /** File with the admin API's bearer token (else `PICOP_PROXY_ADMIN_TOKEN`). */
  adminTokenFile?: string;
  /** Allow the admin API on a non-loopback address without a token. */
  adminInsecure?: boolean;
  /** Certificate and key files (PEM) to serve the admin API over HTTPS. */
  adminTlsCert?: string;
  adminTlsKey?: string;
  /** The authors' controller to register with, as `id`. */
  controllerUrl?: string;
  id?: string;
}

/** The settings of `picop-proxy`: `--help`, the README's table and validation come from here. */
export const SETTINGS = [
  {
    key: 'listen',
    flag: 'listen',
    env: 'PICOP_PROXY_LISTEN',
    type: 'string',
    arg: 'HOST:PORT',
    help: 'where to accept connections (port 0: a free one, logged at start)',
    required: true,
  },
  {
    key: 'defaultRoute',
    flag: 'default',
    env: 'PICOP_PROXY_DEFAULT',
    type: 'string',
    arg: 'HOST:PORT',
    help: 'route without header, without Env-Id, or for an Env-Id without a route',
  },
  {
    key: 'routes',
    flag: 'route',
    env: 'PICOP_PROXY_ROUTES',
    type: 'routes',
    arg: 'ENV=HOST:PORT',
    help: 'a route; repeat for more (variable: ENV=HOST:PORT,...)',
  },
  {
    key: 'routesFile',
    flag: 'routes-file',
    env: 'PICOP_PROXY_ROUTES_FILE',
    type: 'string',
    arg: 'FILE',
    help: 'routes from a JSON file, watched and swapped at once when it changes (a ConfigMap)',
    default: 'off',
  },
  {
    key: 'header',
    flag: 'header',
    env: 'PICOP_PROXY_HEADER',
    type: 'string',
    values: ['required', 'optional'],
    arg: 'required|optional',
    help: 'optional: a client without PiCoP goes to the default route untouched (clients that speak first only)',
    default: String(DEFAULTS.header),
  },
  {
    key: 'propagate',
    flag: 'propagate',
    env: 'PICOP_PROXY_PROPAGATE',
    type: 'boolean',
    help: 're-send the header to the destination (services that read it)',
    default: 'off',
  },
  {
    key: 'dialect',
    flag: 'dialect',
    env: 'PICOP_PROXY_DIALECT',
    type: 'string',
    values: ['spec', 'picop-go'],
    arg: 'spec|picop-go',
    help: 'header layout of the clients',
    default: String(DEFAULTS.dialect),
  },
  {
    key: 'fieldName',
    flag: 'field',
    env: 'PICOP_PROXY_FIELD',
    type: 'string',
    arg: 'NAME',
    help: 'header field holding the Env-Id',
    default: String(DEFAULTS.fieldName),
  },
  {
    key: 'headerTimeoutMs',
    flag: 'header-timeout',
    env: 'PICOP_PROXY_HEADER_TIMEOUT',
    type: 'integer',
    min: 1,
    arg: 'MS',
    help: 'time allowed for a complete header',
    default: String(DEFAULTS.headerTimeoutMs),
  },
  {
    key: 'maxHeaderBytes',
    flag: 'max-header-bytes',
    env: 'PICOP_PROXY_MAX_HEADER_BYTES',
    type: 'integer',
    min: 0,
    max: 65535,
    help: 'longest header context accepted (and re-sent)',
    default: `${DEFAULT_MAX_LENGTH} (picop-go: ${PICOP_GO_MAX_LENGTH})`,
  },
  {
    key: 'connectTimeoutMs',
    flag: 'connect-timeout',
    env: 'PICOP_PROXY_CONNECT_TIMEOUT',
    type: 'integer',
    min: 1,
    arg: 'MS',
    help: 'time allowed to reach a destination',
    default: String(DEFAULTS.connectTimeoutMs),
  },
  {
    key: 'idleTimeoutMs',
    flag: 'idle-timeout',
    env: 'PICOP_PROXY_IDLE_TIMEOUT',
    type: 'integer',
    min: 0,
    arg: 'MS',
    help: 'close a connection with no byte either way this long (0: never)',
    default: String(DEFAULTS.idleTimeoutMs),
  },
  {
    key: 'rerouteQuietMs',
    flag: 'reroute-quiet',
    env: 'PICOP_PROXY_REROUTE_QUIET',
    type: 'integer',
    min: 1,
    arg: 'MS',
    help: 'after a route change, close its connections once quiet this long (they reconnect)',
    default: String(DEFAULTS.rerouteQuietMs),
  },
  {
    key: 'maxConnections',
    flag: 'max-connections',
    env: 'PICOP_PROXY_MAX_CONNECTIONS',
    type: 'integer',
    min: 1,
    help: 'most connections open at once; more are closed on accept (as maxconn)',
    default: String(DEFAULTS.maxConnections),
  },
  {
    key: 'admin',
    flag: 'admin',
    env: 'PICOP_PROXY_ADMIN',
    type: 'string',
    arg: '[HOST:]PORT',
    help: 'admin HTTP API (127.0.0.1 unless a host)',
    default: 'off',
  },
  {
    key: 'adminTokenFile',
    flag: 'admin-token-file',
    env: 'PICOP_PROXY_ADMIN_TOKEN_FILE',
    type: 'string',
    arg: 'FILE',
    help: 'bearer token the admin API requires (or $PICOP_PROXY_ADMIN_TOKEN)',
    default: 'off',
  },
  {
    key: 'adminInsecure',
    flag: 'admin-insecure',
    env: 'PICOP_PROXY_ADMIN_INSECURE',
    type: 'boolean',
    help: 'allow the admin API on a non-loopback address without a token',
    default: 'off',
  },
  {
    key: 'adminTlsCert',
    flag: 'admin-tls-cert',
    env: 'PICOP_PROXY_ADMIN_TLS_CERT',
    type: 'string',
    arg: 'FILE',
    help: 'serve the admin API over HTTPS with this certificate (PEM)',
    default: 'off',
  },
  {
    key: 'adminTlsKey',
    flag: 'admin-tls-key',
    env: 'PICOP_PROXY_ADMIN_TLS_KEY',
    type: 'string',
    arg: 'FILE',
    help: "the certificate's key (PEM)",
    default: 'off',
  },
  {
    key: 'controllerUrl',
    flag: 'controller-url',
    env: 'PICOP_PROXY_CONTROLLER_URL',
    type: 'string',
    arg: 'URL',
    help: "register with the authors' controller (PUT URL/proxy/ID/activate, every 2 s until it succeeds)",
    default: 'off',
  },
  {
    key: 'id',
    flag: 'id',
    env: 'PICOP_PROXY_ID',
    type: 'string',
    arg: 'ID',
    help: "this proxy's id at the controller",
    default: 'off',
  },
  {
    key: 'graceMs',
    flag: 'grace',
    env: 'PICOP_PROXY_GRACE',
    type: 'integer',
    min: 0,
    arg: 'MS',
    help: 'SIGTERM lets open connections finish this long',
    default: String(DEFAULTS.graceMs),
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: 'PICOP_PROXY_LOG_LEVEL',
    type: 'string',
    arg: 'LEVEL',
    help: 'pino level: error, info, debug (per connection)',
    default: String(DEFAULTS.logLevel),
  },
] as const satisfies readonly Setting<keyof ProxyConfig>[];

export const USAGE = usage(
  'picop-proxy',
  'Routes TCP connections by the Env-Id in their PiCoP header.',
  SETTINGS,
  '  picop-proxy --listen 0.0.0.0:9000 --default 10.0.0.5:3306 \\\n    --route feature-1=10.0.0.6:3306 --admin 127.0.0.1:9001',
);

/**
 * Reads the configuration from flags, environment variables and `--config`, in that order of
 * precedence. Returns `'help'` / `'version'` for those flags. Throws `ERR_PICOP_INVALID_ARG` with
 * a message that names the flag, variable or config key at fault (an unknown key: with the
 * closest valid one).
 */
export function loadConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): ProxyConfig | 'help' | 'version' {
  const values = loadSettings(SETTINGS, argv, env, [
    'PICOP_PROXY_ADMIN_TOKEN',
    'PICOP_PROXY_RELAY',
  ]);
  if (typeof values === 'string') return values;
  const { listen, defaultRoute, admin, header, dialect, ...rest } = values as Record<
    string,
    unknown
  >;
  return {
    ...(rest as Omit<ProxyConfig, 'listen' | 'defaultRoute' | 'admin' | 'header' | 'dialect'>),
    listen: parseAddress(listen, '--listen', { allowPortZero: true }),
    defaultRoute: defaultRoute === undefined ? undefined : parseAddress(defaultRoute, '--default'),
    header: header as ProxyConfig['header'],
    dialect: dialect as ProxyConfig['dialect'],
    admin:
      admin === undefined
        ? undefined
        : parseAddress(/^\d+$/.test(String(admin)) ? `:${admin}` : admin, '--admin', {
            allowPortZero: true,
          }),
  };
}
