import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL } from '../../../test/support/servers.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const broker = new URL(AMQP_URL);
const queue = `picop-amqp-otel-${Date.now().toString(36)}`;

describe('@picop/amqp with @opentelemetry/instrumentation-amqplib', () => {
  let proxy: PicopProxy;
  let port: number;
  beforeAll(async () => {
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${broker.hostname}:${broker.port || 5672}`,
    });
    port = (await proxy.listen()).port;
  });
  afterAll(() => proxy.close(100));

  it("runs the handler under the message's process span, in the message's environment", async () => {
    const script = `
      const { NodeSDK } = require('@opentelemetry/sdk-node');
      const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
      const { AmqplibInstrumentation } = require('@opentelemetry/instrumentation-amqplib');
      const { CompositePropagator, W3CTraceContextPropagator, W3CBaggagePropagator } = require('@opentelemetry/core');
      const { EnvIdPropagator, getEnvId, withEnvId } = require('@picop/propagator');
      const exporter = new InMemorySpanExporter();
      const sdk = new NodeSDK({
        spanProcessors: [new SimpleSpanProcessor(exporter)],
        instrumentations: [new AmqplibInstrumentation()],
        textMapPropagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator(), new EnvIdPropagator()] }),
        metricReaders: [], logRecordProcessors: [],
      });
      sdk.start();
      const { trace } = require('@opentelemetry/api');
      const { connect } = require('@picop/amqp');
      (async () => {
        const conn = await connect('amqp://guest:guest@127.0.0.1:${port}');
        const ch = await conn.createChannel();
        await ch.assertQueue('${queue}', { autoDelete: true });
        const handled = new Promise((resolve) => ch.consume('${queue}', (msg) => {
          const span = trace.getTracer('test').startSpan('handler');
          span.end();
          ch.ack(msg);
          resolve(getEnvId());
        }));
        await trace.getTracer('test').startActiveSpan('request', async (span) => {
          await withEnvId('feature-1', async () => ch.sendToQueue('${queue}', Buffer.from('x')));
          span.end();
        });
        const envId = await handled;
        await conn.close();
        const spans = exporter.getFinishedSpans().map((s) => ({
          name: s.name, id: s.spanContext().spanId, parent: s.parentSpanContext?.spanId ?? s.parentSpanId, trace: s.spanContext().traceId,
        }));
        console.log(JSON.stringify({ envId, spans }));
        await sdk.shutdown();
      })();`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: root });
    const { envId, spans } = JSON.parse(stdout.trim().split('\n').pop() as string) as {
      envId: string;
      spans: Array<{ name: string; id: string; parent?: string; trace: string }>;
    };
    expect(envId).toBe('feature-1');
    const processSpan = spans.find((s) => s.name.endsWith('process'));
    const handler = spans.find((s) => s.name === 'handler');
    const request = spans.find((s) => s.name === 'request');
    expect(processSpan).toBeDefined();
    expect(handler?.parent).toBe(processSpan?.id);
    expect(handler?.trace).toBe(request?.trace);
  });
});
