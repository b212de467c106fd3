// docker-compose.yaml describes the demo's topology with containers. Docker does not run here,
// so the file is checked against the demo instead: every instance of environments.json, each
// proxy's routes, the variables service.ts reads, the proxy and gateway settings it sets.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SETTINGS as GATEWAY } from '../../packages/gateway/src/config.js';
import { SETTINGS as PROXY } from '../../packages/proxy/src/config.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const CONFIG = JSON.parse(readFileSync(`${dir}environments.json`, 'utf8')) as {
  baseline: string;
  instances: Record<string, string[]>;
};
interface Service {
  image?: string;
  build?: { dockerfile: string; args: { COMMAND: string } };
  command?: string[];
  environment?: Record<string, string>;
}
const compose = parse(readFileSync(`${dir}docker-compose.yaml`, 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;
const serviceSource = readFileSync(`${dir}service.ts`, 'utf8');
// What service.ts reads: its destructured variables, addr('X'), process.env.X.
const read = new Set([
  ...(/const \{([^}]*)\} = process\.env/.exec(serviceSource)?.[1] ?? '')
    .split(',')
    .map((v) => v.split('=')[0]?.trim())
    .filter((v): v is string => !!v),
  ...[...serviceSource.matchAll(/addr\('([A-Z_]+)'\)/g)].map((m) => m[1] as string),
  ...[...serviceSource.matchAll(/process\.env\.([A-Z_]+)/g)].map((m) => m[1] as string),
]);
const STORES = { mysql: 3306, postgres: 5432, redis: 6379 } as const;

describe('examples/three-envs/docker-compose.yaml', () => {
  it('has every instance of environments.json, and a proxy routing to each', () => {
    for (const [store, port] of Object.entries(STORES)) {
      const proxy = services[store]?.environment ?? {};
      expect(proxy.PICOP_PROXY_DEFAULT).toBe(`${store}-${CONFIG.baseline}:${port}`);
      const routes = (proxy.PICOP_PROXY_ROUTES ?? '').split(',').filter(Boolean).sort();
      const own = (CONFIG.instances[store] ?? []).filter((e) => e !== CONFIG.baseline);
      expect(routes).toEqual(own.map((e) => `${e}=${store}-${e}:${port}`).sort());
      for (const env of CONFIG.instances[store] ?? [])
        expect(services[`${store}-${env}`]).toBeDefined();
    }
    for (const role of ['A', 'B']) {
      const name = role.toLowerCase();
      for (const env of CONFIG.instances[role] ?? []) {
        expect(services[`${name}-${env}`]?.environment).toMatchObject({ ROLE: role, ENV_ID: env });
      }
      expect(services[name]?.environment?.PICOP_PROXY_PROPAGATE).toBe('true');
    }
  });

  it("sets only variables service.ts reads, and every store's address for B and the consumer", () => {
    for (const [name, service] of Object.entries(services)) {
      if (!service.command?.includes('examples/three-envs/service.ts')) continue;
      for (const variable of Object.keys(service.environment ?? {})) {
        expect(read, `${name}: ${variable}`).toContain(variable);
      }
      if (service.environment?.ROLE !== 'A') {
        expect(Object.keys(service.environment ?? {})).toEqual(
          expect.arrayContaining(['MYSQL', 'POSTGRES', 'REDIS', 'AMQP', 'MQTT']),
        );
      }
    }
  });

  it('builds the proxies and the gateway from docker/Dockerfile, with settings they know', () => {
    const known = new Set([...PROXY, ...GATEWAY].map((s) => s.env));
    for (const service of Object.values(services)) {
      if (service.build === undefined) continue;
      expect(service.build.dockerfile).toBe('docker/Dockerfile');
      expect(['picop-proxy', 'picop-gateway']).toContain(service.build.args.COMMAND);
      for (const variable of Object.keys(service.environment ?? {}))
        expect(known).toContain(variable);
    }
    expect(services.gateway?.environment?.PICOP_GATEWAY_UPSTREAM).toBe('a:80');
  });
});
