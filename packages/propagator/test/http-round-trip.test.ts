import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { EnvIdPropagator, getEnvId } from '@picop/propagator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../../test/support/http.js';
import { listen } from '../../../test/support/servers.js';

// The set-up the README shows, with the real SDK and HTTP instrumentation.
const sdk = new NodeSDK({
  textMapPropagator: new CompositePropagator({
    propagators: [
      new W3CTraceContextPropagator(),
      new W3CBaggagePropagator(),
      new EnvIdPropagator(),
    ],
  }),
  spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())],
  // No OTLP metrics or logs: nothing listens for them here.
  metricReaders: [],
  logRecordProcessors: [],
  instrumentations: [new HttpInstrumentation()],
});
sdk.start();
// Loaded after start(), so the instrumentation has patched it (as in a user's instrumentation file).
const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

type Seen = { envIdInHandler: string | undefined; upstreamHeaders: IncomingHttpHeaders };

// httpGet looks http.get up when called: it gets the instrumented one.
const request = (port: number, headers: Record<string, string>) =>
  httpGet(`http://127.0.0.1:${port}/`, { headers });

describe('EnvIdPropagator with NodeSDK and the HTTP instrumentation', () => {
  let upstream: import('node:http').Server;
  let service: import('node:http').Server;
  let servicePort: number;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => res.end(JSON.stringify(req.headers)));
    const upstreamPort = await listen(upstream);
    // A service whose handler calls another service, as a user's code would: nothing PiCoP-specific.
    service = http.createServer(async (_req, res) => {
      const envIdInHandler = getEnvId();
      const upstreamHeaders = JSON.parse(await request(upstreamPort, {}));
      res.end(JSON.stringify({ envIdInHandler, upstreamHeaders } satisfies Seen));
    });
    servicePort = await listen(service);
  });

  afterAll(async () => {
    service.close();
    upstream.close();
    service.closeAllConnections();
    upstream.closeAllConnections();
    await sdk.shutdown();
  });

  it('extracts Env-Id in the handler and carries it, with all baggage, on the outgoing request', async () => {
    const seen: Seen = JSON.parse(
      await request(servicePort, { 'Env-Id': 'feature-1', baggage: 'user=u1' }),
    );
    expect(seen.envIdInHandler).toBe('feature-1');
    expect(seen.upstreamHeaders['env-id']).toBe('feature-1');
    expect(String(seen.upstreamHeaders.baggage).split(',').sort()).toEqual([
      'env-id=feature-1',
      'user=u1',
    ]);
    expect(seen.upstreamHeaders.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  });

  it('takes the Env-Id from W3C baggage alone', async () => {
    const seen: Seen = JSON.parse(await request(servicePort, { baggage: 'env-id=feature-2' }));
    expect(seen.envIdInHandler).toBe('feature-2');
    expect(seen.upstreamHeaders['env-id']).toBe('feature-2');
  });

  it('drops an injected value and carries no Env-Id onward', async () => {
    const seen: Seen = JSON.parse(
      await request(servicePort, { baggage: 'env-id=a%0D%0AX-Evil%3A1,user=u2' }),
    );
    expect(seen.envIdInHandler).toBeUndefined();
    expect(seen.upstreamHeaders['env-id']).toBeUndefined();
    expect(seen.upstreamHeaders['x-evil']).toBeUndefined();
    expect(seen.upstreamHeaders.baggage).toBe('user=u2');
  });

  it('a request without Env-Id stays without one', async () => {
    const seen: Seen = JSON.parse(await request(servicePort, {}));
    expect(seen.envIdInHandler).toBeUndefined();
    expect(seen.upstreamHeaders['env-id']).toBeUndefined();
  });
});
