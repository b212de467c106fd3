// A service as an ES module: each request writes to Redis in its environment.
import http from 'node:http';
import { getEnvId } from '@picop/propagator';
import { Redis } from '@picop/redis';

const redis = new Redis({ host: '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) });
const server = http.createServer(async (req, res) => {
  const key = new URL(req.url ?? '/', 'http://x').searchParams.get('key') ?? 'picop:example';
  const envId = getEnvId() ?? 'baseline';
  await redis.set(key, envId);
  res.end(envId);
});
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () =>
  console.log(`listening on ${server.address().port}`),
);
