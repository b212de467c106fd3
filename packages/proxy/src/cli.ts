#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import { formatAddress } from './address.js';
import { createAdminServer } from './admin.js';
import { loadConfig, USAGE } from './config.js';
import { createProxy } from './PicopProxy.js';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`picop-proxy: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (config === 'version') {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8'));
    process.stdout.write(`${pkg.version}\n`);
    return;
  }
  const { admin, graceMs = 10_000, logLevel = 'info', ...options } = config;
  const logger = pino({ name: 'picop-proxy', level: logLevel });
  const proxy = createProxy({ ...options, logger });
  const address = await proxy.listen();
  const adminServer = admin === undefined ? undefined : createAdminServer(proxy);
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
      header: options.header ?? 'required',
      admin: adminAddress,
    },
    `picop-proxy listening on ${formatAddress(address)}`,
  );

  const stop = (signal: string) => {
    logger.info({ signal, connections: proxy.connections, graceMs }, 'draining');
    adminServer?.close();
    proxy.close(graceMs).then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
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
