// picopTelemetry around bullmq-otel's BullMQOtel: BullMQ's spans and trace context as bullmq-otel
// makes them, the Env-Id carried beside them in the same metadata (the global propagator here
// knows nothing of it). In a child process, for the NodeSDK's globals.
import { expect, it } from 'vitest';
import { expectHandledUnder, runTraced } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import { REDIS_HOST, REDIS_PORT } from '../../../test/support/servers.js';

const queue = `picop-bullmq-otel-${runId()}`;

it("the processor runs under bullmq-otel's process span, in the request's trace and environment", async () => {
  const script = `
    const { NodeSDK } = require('@opentelemetry/sdk-node');
    const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
    const { W3CTraceContextPropagator } = require('@opentelemetry/core');
    const exporter = new InMemorySpanExporter();
    const sdk = new NodeSDK({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
      textMapPropagator: new W3CTraceContextPropagator(),
      instrumentations: [], metricReaders: [], logRecordProcessors: [],
    });
    sdk.start();
    const { trace } = require('@opentelemetry/api');
    const { BullMQOtel } = require('bullmq-otel');
    const IORedis = require('ioredis');
    const { Queue, Worker, picopTelemetry } = require('@picop/bullmq');
    const { getEnvId, withEnvId } = require('@picop/propagator');
    const connection = () => new IORedis({ host: '${REDIS_HOST}', port: ${REDIS_PORT}, maxRetriesPerRequest: null });
    (async () => {
      const telemetry = new BullMQOtel('test');
      const q = new Queue('${queue}', { connection: connection(), telemetry });
      let worker;
      const handled = new Promise((resolve) => {
        worker = new Worker('${queue}', async () => {
          trace.getTracer('test').startSpan('handler').end();
          resolve(getEnvId());
        }, { connection: connection(), telemetry });
      });
      await trace.getTracer('test').startActiveSpan('request', async (span) => {
        await withEnvId('feature-1', () => q.add('job', {}));
        span.end();
      });
      const envId = await handled;
      await worker.close();
      await q.obliterate({ force: true });
      await q.close();
      console.log(JSON.stringify({ envId, spans: finished(exporter) }));
      await sdk.shutdown();
      process.exit(0); // the connections given to BullMQ stay open
    })();`;
  const { envId, spans } = await runTraced(script);
  expect(envId).toBe('feature-1');
  expectHandledUnder(spans, (name) => name.startsWith('process'));
});
