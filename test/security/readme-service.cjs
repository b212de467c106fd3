// A service set up as the root README says, its OpenTelemetry set-up loaded first
// (node --require ../../examples/esm-and-cjs/instrumentation.cjs readme-service.cjs): answers the
// Env-Id its handler runs in, and the baggage it received.
const http = require('node:http');
const { acceptPicop } = require('@picop/net-wrap');
const { getEnvId } = require('@picop/propagator');

const server = acceptPicop(
  http.createServer((req, res) => {
    req.resume();
    res.end(JSON.stringify({ envId: getEnvId() ?? null, baggage: req.headers.baggage ?? null }));
  }),
  { mode: 'optional' },
);
server.listen(0, '127.0.0.1', () => console.log(`listening on ${server.address().port}`));
