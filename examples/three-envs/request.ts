// Sends one order request to A's proxy in an environment, as an edge service would:
//   npx tsx examples/three-envs/request.ts 127.0.0.1:PORT feature-1
import http from 'node:http';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { createAgent } from '@picop/net-wrap';
import { withEnvId } from '@picop/propagator';

const [address, envId = 'main'] = process.argv.slice(2);
if (!address) {
  process.stderr.write('usage: request.ts HOST:PORT [ENV_ID]\n');
  process.exit(2);
}
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const agent = createAgent({ keepAlive: false });
withEnvId(envId, () =>
  http.get(
    `http://${address}/order?id=try-${Date.now()}`,
    { agent, headers: { 'Env-Id': envId } },
    (res) => {
      res.pipe(process.stdout);
      res.on('end', () => process.stdout.write('\n'));
    },
  ),
);
