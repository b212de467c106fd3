// One HTTP service with a Redis client; each request's work lands in its environment's Redis.
import http from 'node:http';
import { acceptPicop } from '@picop/net-wrap';
import { getEnvId } from '@picop/propagator';
import { Redis } from '@picop/redis';

// The Redis picop-proxy: it sends each environment's connection to that environment's Redis.
const redis = new Redis({ host: '127.0.0.1', port: Number(process.env.REDIS_PROXY_PORT ?? 7000) });

const server = http.createServer(async (_req, res) => {
  const visits = await redis.incr('quickstart:visits');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ envId: getEnvId() ?? null, visits }));
});
// Runs each request in the environment of its connection's PiCoP header (sent by the gateway).
acceptPicop(server, { mode: 'optional' });
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`service listening on 127.0.0.1:${server.address().port}`);
});
process.once('SIGTERM', async () => {
  server.close();
  await redis.quit();
  process.exit(0);
});
