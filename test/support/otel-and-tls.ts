import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { afterAll, beforeAll, expect } from 'vitest';

/** Registers the AsyncLocalStorage context manager for the test file, as the NodeSDK would. */
export function useContextManager(): void {
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  afterAll(() => {
    context.disable();
  });
}

/** A self-signed certificate for 127.0.0.1 / localhost, made with openssl for this test run. */
export function selfSignedCert(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'picop-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A finished span, as {@link runTraced}'s script reports it. */
export interface ReportedSpan {
  name: string;
  id: string;
  parent?: string;
  trace: string;
}

/**
 * Runs `script` (CommonJS) in a child process from the repository's root, for the NodeSDK's
 * globals, and returns what it printed last: the script ends with
 * `console.log(JSON.stringify({ envId, spans: finished(exporter) }))`, where `finished` maps an
 * `InMemorySpanExporter`'s spans to {@link ReportedSpan}s (defined for the script).
 */
export async function runTraced(script: string): Promise<{ envId: string; spans: ReportedSpan[] }> {
  const finished = `const finished = (exporter) => exporter.getFinishedSpans().map((s) => ({
    name: s.name, id: s.spanContext().spanId, parent: s.parentSpanContext?.spanId ?? s.parentSpanId,
    trace: s.spanContext().traceId }));`;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', `${finished}\n${script}`], {
    cwd: root,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string);
}

/** Asserts that the span named `handler` is a child of the consumer span and in `request`'s trace. */
export function expectHandledUnder(spans: ReportedSpan[], consumer: (name: string) => boolean) {
  const processSpan = spans.find((s) => consumer(s.name));
  const handler = spans.find((s) => s.name === 'handler');
  const request = spans.find((s) => s.name === 'request');
  expect(processSpan).toBeDefined();
  expect(handler?.parent).toBe(processSpan?.id);
  expect(handler?.trace).toBe(request?.trace);
}
