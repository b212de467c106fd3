import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createPool } from '@picop/mysql';
import { createProxy, type PicopProxy } from '@picop/proxy';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MYSQL_DATABASE,
  MYSQL_HOST,
  MYSQL_PASSWORD,
  MYSQL_PORT,
  MYSQL_USER,
} from '../../../test/support/servers.js';

const login = { user: MYSQL_USER, password: MYSQL_PASSWORD, database: MYSQL_DATABASE };
const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('@picop/mysql is transparent', () => {
  it('is plain mysql2 with picop: false or PICOP_DISABLED=1: same pool class, results and errors', async () => {
    const plain = mysql.createPool({ ...login, host: MYSQL_HOST, port: MYSQL_PORT });
    const off = createPool({ ...login, host: MYSQL_HOST, port: MYSQL_PORT, picop: false });
    process.env.PICOP_DISABLED = '1';
    const offByEnv = createPool({ ...login, host: MYSQL_HOST, port: MYSQL_PORT });
    delete process.env.PICOP_DISABLED;
    for (const pool of [off, offByEnv]) {
      expect(pool).toBeInstanceOf(plain.constructor);
      expect(pool.pools).toBeUndefined();
      const sql =
        "SELECT 1 AS one, 'x' AS s, CAST(2.5 AS DECIMAL(3,1)) AS d, NOW() IS NOT NULL AS t";
      const [a, fa] = await plain.query(sql);
      const [b, fb] = await pool.query(sql);
      expect(b).toEqual(a);
      expect(fb.map((f) => [f.name, f.type])).toEqual(fa.map((f) => [f.name, f.type]));
      const e1 = await plain.query('SELEC 1').catch((e) => e);
      const e2 = await pool.query('SELEC 1').catch((e) => e);
      expect([e2.code, e2.errno, e2.sqlState]).toEqual([e1.code, e1.errno, e1.sqlState]);
      await pool.end();
    }
    await plain.end();
  });

  describe('with @opentelemetry/instrumentation-mysql2', () => {
    let proxy: PicopProxy;
    let port: number;
    beforeAll(async () => {
      proxy = createProxy({ listen: '127.0.0.1:0', defaultRoute: `${MYSQL_HOST}:${MYSQL_PORT}` });
      port = (await proxy.listen()).port;
    });
    afterAll(() => proxy.close(100));

    it('lets the process exit after end(), with maxIdle below connectionLimit (no timer left)', async () => {
      const config = { ...login, host: '127.0.0.1', port, connectionLimit: 4, maxIdle: 1 };
      const script = `
        const { createPool } = require('@picop/mysql');
        const pool = createPool(${JSON.stringify(config)});
        pool.query('SELECT 1').then(() => pool.end()).then(() => console.log('ended'));`;
      // execFile resolves only once the process has exited by itself.
      const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: root });
      expect(stdout.trim()).toBe('ended');
    });

    it('still records a span per query, as a CommonJS service set up with the NodeSDK', async () => {
      // A separate process, as a user's service: the SDK starts before @picop/mysql (and mysql2) load.
      const script = `
        const { NodeSDK } = require('@opentelemetry/sdk-node');
        const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
        const { MySQL2Instrumentation } = require('@opentelemetry/instrumentation-mysql2');
        const exporter = new InMemorySpanExporter();
        // The query's span ends just after the query's promise settles: awaited as an event.
        let queryEnded;
        const queryEnd = new Promise((resolve) => (queryEnded = resolve));
        const onQueryEnd = { onStart() {}, onEnd(span) { if ((span.attributes['db.statement'] ?? span.attributes['db.query.text']) === 'SELECT 1 AS one') queryEnded(); }, forceFlush: async () => {}, shutdown: async () => {} };
        const simple = new SimpleSpanProcessor(exporter);
        const sdk = new NodeSDK({ spanProcessors: [simple, onQueryEnd], instrumentations: [new MySQL2Instrumentation()], metricReaders: [], logRecordProcessors: [] });
        sdk.start();
        const { trace } = require('@opentelemetry/api');
        const { createPool } = require('@picop/mysql');
        const { withEnvId } = require('@picop/propagator');
        (async () => {
          const pool = createPool(${JSON.stringify({ ...login, host: '127.0.0.1', port })});
          await trace.getTracer('test').startActiveSpan('request', async (span) => {
            await withEnvId('feature-1', () => pool.query('SELECT 1 AS one'));
            span.end();
          });
          await queryEnd;
          // Its export may wait for the resource's asynchronous attributes: flushed, not polled.
          await simple.forceFlush();
          await pool.end();
          const spans = exporter.getFinishedSpans();
          const parent = spans.find((s) => s.name === 'request');
          console.log(JSON.stringify(spans.filter((s) => s !== parent).map((s) => ({
            name: s.name,
            statement: s.attributes['db.statement'] ?? s.attributes['db.query.text'],
            sameTrace: s.spanContext().traceId === parent.spanContext().traceId,
          }))));
          await sdk.shutdown();
        })();`;
      const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: root });
      const spans = JSON.parse(stdout.trim().split('\n').pop() as string);
      expect(spans).toContainEqual(
        expect.objectContaining({ statement: 'SELECT 1 AS one', sameTrace: true }),
      );
      expect(proxy.stats().byEnv._default?.accepted).toBeGreaterThan(0);
    });
  });
});
