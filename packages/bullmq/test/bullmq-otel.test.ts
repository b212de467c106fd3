// picopTelemetry around bullmq-otel's BullMQOtel: BullMQ's spans and trace context as bullmq-otel
// makes them, the Env-Id carried beside them in the same metadata (the global propagator here
// knows nothing of it). In a child process, for the NodeSDK's globals.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { REDIS_HOST, REDIS_PORT } from '../../../test/support/servers.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const queue = `picop-bullmq-otel-${Date.now().toString(36)}`;

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
      const spans = exporter.getFinishedSpans().map((s) => ({
        name: s.name, id: s.spanContext().spanId, parent: s.parentSpanContext?.spanId ?? s.parentSpanId, trace: s.spanContext().traceId,
      }));
      console.log(JSON.stringify({ envId, spans }));
      await sdk.shutdown();
      process.exit(0); // the connections given to BullMQ stay open
    })();`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: root });
  const { envId, spans } = JSON.parse(stdout.trim().split('\n').pop() as string) as {
    envId: string;
    spans: Array<{ name: string; id: string; parent?: string; trace: string }>;
  };
  expect(envId).toBe('feature-1');
  const processSpan = spans.find((s) => s.name.startsWith('process'));
  const handler = spans.find((s) => s.name === 'handler');
  const request = spans.find((s) => s.name === 'request');
  expect(processSpan).toBeDefined();
  expect(handler?.parent).toBe(processSpan?.id);
  expect(handler?.trace).toBe(request?.trace);
});
