import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL } from '../../../test/support/servers.js';

// The built package in a project whose amqplib is 0.10 (installed here as the alias amqplib-0.10),
// the other @picop packages and the OpenTelemetry API linked from this repository.
const root = fileURLToPath(new URL('../../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'picop-amqplib-010-'));

describe('@picop/amqp with amqplib 0.10', () => {
  beforeAll(() => {
    const modules = join(dir, 'node_modules');
    mkdirSync(join(modules, '@picop', 'amqp'), { recursive: true });
    mkdirSync(join(modules, '@opentelemetry'), { recursive: true });
    cpSync(join(root, 'packages/amqp/package.json'), join(modules, '@picop/amqp/package.json'));
    cpSync(join(root, 'packages/amqp/dist'), join(modules, '@picop/amqp/dist'), {
      recursive: true,
    });
    symlinkSync(join(root, 'node_modules/amqplib-0.10'), join(modules, 'amqplib'));
    for (const [name, folder] of [
      ['net-wrap', 'net-wrap'],
      ['propagator', 'propagator'],
      ['codec', 'picop-codec'],
      ['proxy', 'proxy'],
    ]) {
      symlinkSync(
        join(root, 'packages', folder as string),
        join(modules, '@picop', name as string),
      );
    }
    for (const name of ['api', 'context-async-hooks']) {
      symlinkSync(
        join(root, 'node_modules/@opentelemetry', name),
        join(modules, '@opentelemetry', name),
      );
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('opens per-environment connections with the header, and carries the Env-Id in messages', async () => {
    const broker = new URL(AMQP_URL);
    const script = `
      const { context } = require('@opentelemetry/api');
      const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      const { connect } = require('@picop/amqp');
      const { withEnvId, getEnvId } = require('@picop/propagator');
      const { createProxy } = require('@picop/proxy');
      (async () => {
        const target = '${broker.hostname}:${broker.port || 5672}';
        const proxy = createProxy({ listen: '127.0.0.1:0', defaultRoute: target, routes: { 'feature-1': target } });
        const { port } = await proxy.listen();
        const conn = await withEnvId('feature-1', () => connect('amqp://${broker.username}:${broker.password}@127.0.0.1:' + port));
        const ch = await withEnvId('feature-1', () => conn.createChannel());
        const { queue } = await ch.assertQueue('', { exclusive: true });
        const got = new Promise((resolve) => ch.consume(queue, (m) => { ch.ack(m); resolve({ envId: getEnvId(), headers: m.properties.headers }); }));
        withEnvId('feature-1', () => ch.sendToQueue(queue, Buffer.from('x')));
        const result = await got;
        console.log(JSON.stringify({ amqplib: require('amqplib/package.json').version, ...result, accepted: proxy.stats().byEnv['feature-1'].accepted }));
        await conn.close();
        await proxy.close(10);
      })();`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: dir });
    expect(JSON.parse(stdout.trim().split('\n').pop() as string)).toEqual({
      amqplib: expect.stringMatching(/^0\.10\./),
      envId: 'feature-1',
      headers: { 'Env-Id': 'feature-1' },
      accepted: 1,
    });
  });
});
