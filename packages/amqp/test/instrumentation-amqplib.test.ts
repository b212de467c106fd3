import { createProxy, type PicopProxy } from '@picop/proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectHandledUnder, runTraced } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import { AMQP_URL } from '../../../test/support/servers.js';

const broker = new URL(AMQP_URL);
const queue = `picop-amqp-otel-${runId()}`;

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
        console.log(JSON.stringify({ envId, spans: finished(exporter) }));
        await sdk.shutdown();
      })();`;
    const { envId, spans } = await runTraced(script);
    expect(envId).toBe('feature-1');
    expectHandledUnder(spans, (name) => name.endsWith('process'));
  });
});
