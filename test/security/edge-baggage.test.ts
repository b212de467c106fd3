// One reading of baggage: whatever Env-Id a service set up as the README says would read from a
// request's baggage, picop-gateway reads too, and checks (allow list, token) or strips.
import type { ChildProcess } from 'node:child_process';
import { createGateway, type PicopGateway } from '@picop/gateway';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReadmeService } from './helpers.js';

const TOKEN = 's3cret-token-of-the-edge';

describe('baggage at the edge and in the service', () => {
  let service: { child: ChildProcess; port: number };
  let gateway: PicopGateway;
  let port: number;
  beforeAll(async () => {
    service = await startReadmeService();
    gateway = createGateway({
      listen: '127.0.0.1:0',
      upstream: `127.0.0.1:${service.port}`,
      allow: ['feature-1'],
      token: TOKEN,
    });
    port = (await gateway.listen()).port;
  });
  afterAll(async () => {
    await gateway.close(100);
    service.child.kill();
  });

  /** What the service saw of a request sent to the gateway with `headers`. */
  async function send(
    headers: string[] | Record<string, string>,
  ): Promise<Record<string, unknown> & { status: number }> {
    const res = await request(`http://127.0.0.1:${port}/`, { headers });
    const text = await res.body.text();
    return { ...(JSON.parse(text) as Record<string, unknown>), status: res.statusCode };
  }
  const refused = () =>
    gateway.metrics.registry
      .getSingleMetricAsString('picop_gateway_env_id_refused_total')
      .then((s) => [...s.matchAll(/ (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0));

  it.each([
    'env-id=feature-1',
    'env%2Did=feature-1',
    '%65nv-id=feature-1',
    'a=1,env%2Did=feature-1;prop=x,b=2',
    'env%2Did=feature-2',
  ])(
    'without the token, baggage %j runs in the baseline and counts as refused',
    async (baggage) => {
      const before = await refused();
      const seen = await send({ baggage });
      expect(seen).toMatchObject({ status: 200, envId: null });
      expect(String(seen.baggage ?? '')).not.toMatch(/id=feature/);
      expect(await refused()).toBe(before + 1);
    },
  );

  it('keeps the other members of the baggage', async () => {
    expect(await send({ baggage: 'a=1,env%2Did=feature-1;prop=x,b=2' })).toMatchObject({
      envId: null,
      baggage: 'a=1,b=2',
    });
  });

  it('reads several baggage headers', async () => {
    expect(await send(['baggage', 'a=1', 'baggage', 'env%2Did=feature-1'])).toMatchObject({
      envId: null,
      baggage: 'a=1',
    });
  });

  it('with the token, an encoded baggage key is the Env-Id the service runs in', async () => {
    expect(await send({ baggage: '%65nv-id=feature-1', 'picop-token': TOKEN })).toMatchObject({
      envId: 'feature-1',
    });
  });

  it('two different Env-Ids in one request are a 400 with a code', async () => {
    const requests: Array<Record<string, string>> = [
      { baggage: 'env-id=feature-1,env%2Did=feature-2', 'picop-token': TOKEN },
      { 'env-id': 'feature-1', baggage: '%65nv-id=feature-2', 'picop-token': TOKEN },
    ];
    for (const headers of requests) {
      const seen = await send(headers);
      expect(seen.status).toBe(400);
      expect(seen).toMatchObject({ error: { code: 'ERR_PICOP_AMBIGUOUS_ENV_ID' } });
    }
  });

  it('with ignoreBaggage, the member is still removed before the service reads it', async () => {
    const ignoring = createGateway({
      listen: '127.0.0.1:0',
      upstream: `127.0.0.1:${service.port}`,
      ignoreBaggage: true,
    });
    const { port: ignoringPort } = await ignoring.listen();
    try {
      const res = await request(`http://127.0.0.1:${ignoringPort}/`, {
        headers: { baggage: 'env%2Did=feature-1' },
      });
      expect(await res.body.json()).toMatchObject({ envId: null, baggage: null });
    } finally {
      await ignoring.close(100);
    }
  });
});
