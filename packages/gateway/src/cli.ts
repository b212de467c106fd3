#!/usr/bin/env node
import http from 'node:http';
import { join } from 'node:path';
import { resolvesToLoopback, startCommand, usage } from '@picop/cli-kit';
import { formatAddress } from '@picop/routes';
import { pino } from 'pino';
import { collectDefaultMetrics } from 'prom-client';
import { loadGatewayConfig, SETTINGS } from './config.js';
import { DEFAULTS } from './defaults.js';
import { createGateway } from './PicopGateway.js';

const USAGE = usage(
  'picop-gateway',
  'The edge of a PiCoP system: forwards HTTP requests from outside, each over a connection that\ncarries the PiCoP header of the Env-Id the request names (header, baggage, cookie or host).',
  SETTINGS,
  '  picop-gateway --listen 0.0.0.0:8080 --upstream svc-a-proxy:9000 --allow "feature-*" \\\n    --token-file /run/secrets/picop-token --admin 9090',
);

async function main(): Promise<void> {
  const config = startCommand(
    'picop-gateway',
    () => loadGatewayConfig(process.argv.slice(2)),
    USAGE,
    join(__dirname, '..'),
  );
  if (config === undefined) return;
  const {
    admin,
    graceMs = DEFAULTS.graceMs,
    logLevel = DEFAULTS.logLevel,
    tokenFile: _t,
    cookieKeyFile: _c,
    ...options
  } = config;
  const logger = pino({ name: 'picop-gateway', level: logLevel });
  const gateway = createGateway({ ...options, logger });
  collectDefaultMetrics({ register: gateway.metrics.registry });
  const address = await gateway.listen();

  let draining = false;
  const adminServer =
    admin === undefined
      ? undefined
      : http.createServer(async (req, res) => {
          if (req.url === '/healthz') {
            res.writeHead(draining ? 503 : 200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ status: draining ? 'draining' : 'ok' }));
          } else if (req.url === '/metrics') {
            res.writeHead(200, { 'content-type': gateway.metrics.registry.contentType });
            res.end(await gateway.metrics.registry.metrics());
          } else {
            res.writeHead(404, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: { code: 'ERR_NOT_FOUND', message: 'Not Found' } }));
          }
        });
  let adminAddress: string | undefined;
  if (adminServer !== undefined && typeof admin === 'object') {
    // A name that does not resolve: exit 2 here, never an unhandled error at listen().
    await resolvesToLoopback(admin.host, '--admin');
    await new Promise<void>((resolve) => adminServer.listen(admin.port, admin.host, resolve));
    const a = adminServer.address() as { address: string; port: number };
    adminAddress = formatAddress({ host: a.address, port: a.port });
  }
  // A pattern of stars alone ('*', '**') lets any Env-Id through.
  const allowsAll = options.allow === undefined || options.allow.some((p) => /^\*+$/.test(p));
  if (!gateway.guarded && allowsAll) {
    logger.warn(
      'any client may pick any environment: set --allow, and --token-file or --cookie-key-file, when the gateway faces the internet',
    );
  }
  // One start-up line, whatever the level (scripts that start the gateway on port 0 read `listen`).
  (logLevel === 'silent' ? logger : logger.child({}, { level: 'info' })).info(
    {
      listen: formatAddress(address),
      upstream: gateway.routes.default && formatAddress(gateway.routes.default),
      routes: gateway.routes.size,
      admin: adminAddress,
      guarded: gateway.guarded,
    },
    `picop-gateway listening on ${formatAddress(address)}`,
  );

  const stop = (signal: string) => {
    draining = true;
    logger.info({ signal, graceMs }, 'draining');
    gateway.close(graceMs).then(() => {
      adminServer?.close();
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(
    `picop-gateway: ${err.code === 'EADDRINUSE' ? `address in use: ${err.message}` : err.message}\n`,
  );
  process.exit(err.code === 'ERR_PICOP_INVALID_ARG' ? 2 : 1);
});
