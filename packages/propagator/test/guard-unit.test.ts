// PicopGuard's own logic on spans made by hand (the instrumentations' spans: test/guard.test.ts).
import { context, ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { type GuardedSpan, PicopGuard, setEnvId } from '@picop/propagator';
import { inRouted } from '@picop/propagator/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { useContextManager } from '../../../test/support/otel-and-tls.js';

useContextManager();

const feature1 = setEnvId(ROOT_CONTEXT, 'feature-1');
const span = (attributes: GuardedSpan['attributes'] | undefined, kind = SpanKind.CLIENT) =>
  ({ name: 'op', kind, attributes }) as GuardedSpan;
const guards: PicopGuard[] = [];
const guard = (options?: ConstructorParameters<typeof PicopGuard>[0]) => {
  const g = new PicopGuard({ checkModules: false, ...options });
  guards.push(g);
  return g;
};
afterEach(async () => {
  for (const g of guards.splice(0)) await g.shutdown();
});

describe('PicopGuard', () => {
  it('flags a database client span of a non-baseline environment, once however often it is seen', () => {
    const g = guard();
    const pg = span({ 'db.system.name': 'postgresql' });
    g.onStart(pg, feature1);
    g.onStart(pg, feature1); // the same guard registered twice
    expect(g.unrouted).toEqual([
      { system: 'postgresql', envId: 'feature-1', operation: 'op', instrumentation: undefined },
    ]);
  });

  it('passes the baseline, server and internal spans, and spans without attributes', () => {
    const g = guard({ baselineEnvId: 'prod' });
    g.onStart(span({ 'db.system': 'redis' }), ROOT_CONTEXT);
    g.onStart(span({ 'db.system': 'redis' }), setEnvId(ROOT_CONTEXT, 'prod'));
    g.onStart(span({ 'db.system': 'redis' }, SpanKind.SERVER), feature1);
    g.onStart(span({ 'db.system': 'redis' }, SpanKind.INTERNAL), feature1);
    const bare = span(undefined);
    expect(() => g.onStart(bare, feature1)).not.toThrow();
    expect(() => g.onEnd(bare)).not.toThrow();
    expect(g.unrouted).toEqual([]);
  });

  it('passes work a wrapper ran with inRouted; an HTTP client span is judged at its end', () => {
    const g = guard();
    // inRouted runs the library's call in the active context with this mark: its spans' parent.
    let parent = ROOT_CONTEXT;
    context.with(feature1, () =>
      inRouted(() => {
        parent = context.active();
      }, undefined),
    );
    g.onStart(span({ 'db.system': 'mysql' }), parent);
    expect(g.unrouted).toEqual([]);
    const marked = span({ 'http.request.method': 'GET' });
    const plain = span({ 'http.request.method': 'GET' });
    g.onStart(marked, feature1);
    g.onStart(plain, feature1);
    (marked.attributes as Record<string, unknown>)['picop.routed'] = true;
    g.onEnd(marked);
    g.onEnd(plain);
    expect(g.unrouted.map((u) => u.system)).toEqual(['http']);
  });

  it("mode 'throw' throws ERR_PICOP_UNROUTED from onStart, with no meter provider registered", () => {
    const g = guard({ mode: 'throw' });
    expect(() =>
      g.onStart(span({ 'messaging.system': 'rabbitmq' }, SpanKind.PRODUCER), feature1),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_PICOP_UNROUTED',
        message: expect.stringContaining('@picop/amqp'),
      }),
    );
  });
});
