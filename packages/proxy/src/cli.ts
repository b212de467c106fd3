#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSecret, resolvesToLoopback, startCommand } from '@picop/cli-kit';
import { PicopError } from '@picop/codec';
import { type Address, formatAddress } from '@picop/routes';
import { type Logger, pino } from 'pino';
import { collectDefaultMetrics } from 'prom-client';
import { createAdminServer } from './admin.js';
import { loadConfig, USAGE } from './config.js';
import { registerWithController } from './controller.js';
import { DEFAULTS } from './defaults.js';
import { createProxy } from './PicopProxy.js';

async function main(): Promise<void> {
  const config = startCommand(
    'picop-proxy',
    () => loadConfig(process.argv.slice(2)),
    USAGE,
    join(__dirname, '..'),
  );
  if (config === undefined) return;
  const {
    admin,
    graceMs = DEFAULTS.graceMs,
    logLevel = DEFAULTS.logLevel,
    adminTokenFile,
    adminInsecure,
    adminTlsCert,
    adminTlsKey,
    controllerUrl,
    id,
    ...options
  } = config;
  const token = readSecret(
    adminTokenFile,
    'PICOP_PROXY_ADMIN_TOKEN',
    process.env,
    '--admin-token-file',
  );
  // Resolved, not read: `127.example.com` is checked for where it leads, and a name that does not
  // resolve stops the start here (exit 2) rather than at listen().
  const adminLoopback =
    admin !== undefined && typeof admin === 'object'
      ? await resolvesToLoopback(admin.host, '--admin')
      : true;
  if (admin !== undefined && token === undefined && !adminInsecure && !adminLoopback) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `--admin ${formatAddress(admin as Address)} is reachable from other hosts, and whoever reaches it can reroute any environment: give --admin-token-file (or PICOP_PROXY_ADMIN_TOKEN), or --admin-insecure`,
    );
  }
  if ((adminTlsCert === undefined) !== (adminTlsKey === undefined)) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      '--admin-tls-cert and --admin-tls-key go together',
    );
  }
  if ((controllerUrl === undefined) !== (id === undefined)) {
    throw new PicopError('ERR_PICOP_INVALID_ARG', '--controller-url and --id go together');
  }
  const tls =
    adminTlsCert === undefined || adminTlsKey === undefined
      ? undefined
      : {
          cert: readFile(adminTlsCert, '--admin-tls-cert'),
          key: readFile(adminTlsKey, '--admin-tls-key'),
        };
  const logger = pino({ name: 'picop-proxy', level: logLevel });
  const proxy = createProxy({ ...options, logger });
  // Process, file-descriptor, memory, GC and event-loop metrics, next to the proxy's.
  collectDefaultMetrics({ register: proxy.registry });
  const address = await proxy.listen();
  const adminServer = admin === undefined ? undefined : createAdminServer(proxy, { token, tls });
  let adminAddress: string | undefined;
  if (adminServer !== undefined && admin !== undefined && typeof admin === 'object') {
    await new Promise<void>((resolve) => adminServer.listen(admin.port, admin.host, resolve));
    const a = adminServer.address() as { address: string; port: number };
    adminAddress = formatAddress({ host: a.address, port: a.port });
  }
  // One start-up line, whatever the level (scripts that start the proxy on port 0 read `listen`).
  startupLogger(logger, logLevel).info(
    {
      listen: formatAddress(address),
      default: proxy.routes.default && formatAddress(proxy.routes.default),
      routes: proxy.routes.size,
      header: options.header ?? DEFAULTS.header,
      admin: adminAddress,
    },
    `picop-proxy listening on ${formatAddress(address)}`,
  );
  const registration =
    controllerUrl === undefined || id === undefined
      ? undefined
      : registerWithController(controllerUrl, id, {
          onRetry: (err, attempt) =>
            logger.warn(
              { controllerUrl, id, attempt, err: err.message },
              'controller registration failed; retrying in 2 s',
            ),
        });
  registration?.registered.then(() =>
    logger.info({ controllerUrl, id }, 'registered with the controller'),
  );

  const stop = (signal: string) => {
    logger.info({ signal, connections: proxy.connections, graceMs }, 'draining');
    adminServer?.close();
    registration?.stop();
    proxy.close(graceMs).then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

function readFile(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `${flag}: cannot read ${file}: ${(err as Error).message}`,
    );
  }
}

/** The logger of the start-up line: at info even when the level is error or warn. */
function startupLogger(logger: Logger, level: string): Logger {
  return level === 'silent' ? logger : logger.child({}, { level: 'info' });
}

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(
    `picop-proxy: ${err.code === 'EADDRINUSE' ? `address in use: ${err.message}` : err.message}\n`,
  );
  process.exit(err.code === 'ERR_PICOP_INVALID_ARG' ? 2 : 1);
});
