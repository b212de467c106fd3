import { execFile } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { acceptPicop } from '@picop/net-wrap';
import { getEnvId } from '@picop/propagator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useContextManager } from '../../../test/support/otel-and-tls.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

useContextManager();

describe('@picop/fetch with @opentelemetry/instrumentation-undici', () => {
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    // Answers with the Env-Id of the connection's PiCoP header and the HTTP headers it got.
    server = acceptPicop(
      http.createServer((req, res) =>
        res.end(
          JSON.stringify({
            envId: getEnvId() ?? null,
            traceparent: req.headers.traceparent ?? null,
            baggage: req.headers.baggage ?? null,
          }),
        ),
      ),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it("keeps the instrumentation's span and headers, and the connection carries the Env-Id", async () => {
    // A service's OTel set-up file: the SDK, the undici instrumentation, our global dispatcher.
    const script = `
      const { NodeSDK } = require('@opentelemetry/sdk-node');
      const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
      const { UndiciInstrumentation } = require('@opentelemetry/instrumentation-undici');
      const { CompositePropagator, W3CTraceContextPropagator, W3CBaggagePropagator } = require('@opentelemetry/core');
      const { EnvIdPropagator, withEnvId } = require('@picop/propagator');
      const { createDispatcher } = require('@picop/fetch');
      const { setGlobalDispatcher } = require('undici');
      const exporter = new InMemorySpanExporter();
      new NodeSDK({
        spanProcessors: [new SimpleSpanProcessor(exporter)],
        instrumentations: [new UndiciInstrumentation()],
        textMapPropagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator(), new EnvIdPropagator()] }),
        metricReaders: [], logRecordProcessors: [],
      }).start();
      setGlobalDispatcher(createDispatcher({ picop: { origins: '127.0.0.1' } }));
      const { trace } = require('@opentelemetry/api');
      trace.getTracer('test').startActiveSpan('request', async (span) => {
        const answer = await withEnvId('feature-1', async () => (await fetch('http://127.0.0.1:${port}/')).json());
        span.end();
        await trace.getTracerProvider().getDelegate().forceFlush();
        const spans = exporter.getFinishedSpans().map((s) => ({
          name: s.name, trace: s.spanContext().traceId, id: s.spanContext().spanId,
          status: s.attributes['http.response.status_code'],
        }));
        console.log(JSON.stringify({ answer, trace: span.spanContext().traceId, spans }));
        process.exit(0);
      });
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: root });
    const { answer, trace, spans } = JSON.parse(stdout);
    expect(answer.envId).toBe('feature-1');
    // The propagators' own HTTP headers keep flowing: W3C baggage carries the Env-Id too.
    expect(answer.baggage).toBe('env-id=feature-1');
    const client = spans.find((s: { name: string }) => s.name === 'GET');
    expect(client).toMatchObject({ trace, status: 200 });
    // The instrumentation's traceparent names its own client span, as without PiCoP.
    expect(answer.traceparent).toBe(`00-${trace}-${client.id}-01`);
  });
});
