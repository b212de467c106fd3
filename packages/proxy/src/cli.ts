#!/usr/bin/env node
import { pino } from 'pino';
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
  const { admin, graceMs = 10_000, logLevel = 'info', ...options } = config;
  const logger = pino({ name: 'picop-proxy', level: logLevel });
  const proxy = createProxy({ ...options, logger });
  const address = await proxy.listen();
  logger.info({ listen: formatAddress(address), routes: proxy.routes.toJSON() }, 'listening');
  // One plain line for scripts that start the proxy on port 0.
  process.stdout.write(`picop-proxy listening on ${formatAddress(address)}\n`);

  const adminServer = admin === undefined ? undefined : createAdminServer(proxy);
  if (adminServer !== undefined && admin !== undefined && typeof admin === 'object') {
    await new Promise<void>((resolve) => adminServer.listen(admin.port, admin.host, resolve));
    const a = adminServer.address() as { address: string; port: number };
    process.stdout.write(
      `picop-proxy admin on ${formatAddress({ host: a.address, port: a.port })}\n`,
    );
  }

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

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(
    `picop-proxy: ${err.code === 'EADDRINUSE' ? `address in use: ${err.message}` : err.message}\n`,
  );
  process.exit(err.code === 'ERR_PICOP_INVALID_ARG' ? 2 : 1);
});
