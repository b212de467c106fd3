import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { usePgPair } from './helpers.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('@picop/pg with @opentelemetry/instrumentation-pg', () => {
  const pair = usePgPair();

  it("keeps the instrumentation's query spans, in the request's trace and environment", async () => {
    const script = `
      const { NodeSDK } = require('@opentelemetry/sdk-node');
      const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
      const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg');
      const exporter = new InMemorySpanExporter();
      new NodeSDK({
        spanProcessors: [new SimpleSpanProcessor(exporter)],
        instrumentations: [new PgInstrumentation()],
        metricReaders: [], logRecordProcessors: [],
      }).start();
      const { trace } = require('@opentelemetry/api');
      const { withEnvId } = require('@picop/propagator');
      const { Pool } = require('@picop/pg');
      const pool = new Pool({ host: '127.0.0.1', port: ${pair.port}, user: 'postgres', database: 'postgres' });
      trace.getTracer('test').startActiveSpan('request', async (span) => {
        const port = await withEnvId('feature-1', async () =>
          (await pool.query('SELECT inet_server_port() AS port')).rows[0].port);
        span.end();
        await pool.end();
        await trace.getTracerProvider().getDelegate().forceFlush();
        const spans = exporter.getFinishedSpans().map((s) => ({
          name: s.name, trace: s.spanContext().traceId,
          parent: s.parentSpanContext?.spanId ?? s.parentSpanId,
        }));
        console.log(JSON.stringify({ port, trace: span.spanContext().traceId, request: span.spanContext().spanId, spans }));
        process.exit(0);
      });
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: root });
    const { port: served, trace, request, spans } = JSON.parse(stdout);
    // feature-1's server answered.
    expect(served).toBe(pair.second.port);
    const query = spans.find((s: { name: string }) => s.name.startsWith('pg.query'));
    expect(query).toMatchObject({ trace, parent: request });
  });
});
