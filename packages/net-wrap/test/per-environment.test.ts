import { ROOT_CONTEXT } from '@opentelemetry/api';
import { closePerEnvironment, PICOP_POOLS, perEnvironment } from '@picop/net-wrap';
import { withEnvId } from '@picop/propagator';
import { describe, expect, it } from 'vitest';
import { useContextManager } from './helpers.js';

useContextManager();

/** A stand-in for a data layer: a callable with methods, a getter, a nested object, `this`. */
function fakeDb(envId: string | undefined) {
  const label = envId ?? 'baseline';
  const db = Object.assign((table: string) => `${label}:${table}`, {
    label,
    closed: false,
    who() {
      return (this as { label: string }).label;
    },
    get builder() {
      return { from: (t: string) => `${label} from ${t}` };
    },
    user: { findMany: () => `${label} users` },
    async *rows() {
      yield label;
    },
  });
  return db;
}

describe('perEnvironment', () => {
  const make = () =>
    perEnvironment((env) => fakeDb(env.envId), {
      destroy: (db) => {
        db.closed = true;
      },
    });

  it('routes calls, methods, getters and nested objects to the active environment’s instance', async () => {
    const db = make();
    const who = db.who; // kept outside any request
    const users = db.user; // a nested object kept too
    expect(
      withEnvId('feature-1', () => [db('t'), who(), db.builder.from('x'), users.findMany()]),
    ).toEqual(['feature-1:t', 'feature-1', 'feature-1 from x', 'feature-1 users']);
    expect([db('t'), who(), db.label, users.findMany()]).toEqual([
      'baseline:t',
      'baseline',
      'baseline',
      'baseline users',
    ]);
    const rows: string[] = [];
    await withEnvId('feature-1', async () => {
      for await (const row of db.rows()) rows.push(row);
    });
    expect(rows).toEqual(['feature-1']);
    expect(Object.keys(db)).toContain('who');
    expect('user' in db).toBe(true);
    await closePerEnvironment(db);
  });

  it('one instance per environment, the baseline’s included, closed by closePerEnvironment()', async () => {
    const db = make();
    const seen = [
      withEnvId('feature-1', () => db.label),
      withEnvId('feature-1', () => db.label),
      db.label,
    ];
    expect(seen).toEqual(['feature-1', 'feature-1', 'baseline']);
    expect(db[PICOP_POOLS].created).toBe(2);
    await closePerEnvironment(db);
    expect(() => db.label).toThrow(expect.objectContaining({ code: 'ERR_PICOP_INVALID_STATE' }));
  });

  it('refuses to change the object that stands for every instance, and await leaves it alone', async () => {
    const db = make();
    expect(() => {
      (db as { label: string }).label = 'x';
    }).toThrow(expect.objectContaining({ code: 'ERR_PICOP_UNSUPPORTED' }));
    expect(() => delete (db as { label?: string }).label).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_UNSUPPORTED' }),
    );
    // Not a thenable: an async function may return it.
    expect(await (async () => db)()).toBe(db);
    expect(db[PICOP_POOLS].byEnvId().next().done).toBe(false);
    expect(ROOT_CONTEXT).toBeDefined();
    await closePerEnvironment(db);
  });

  it('refuses a call without create or destroy, naming both', () => {
    const bad = perEnvironment as (...args: unknown[]) => unknown;
    for (const args of [[() => ({})], [() => ({}), {}], [undefined, { destroy: () => {} }]]) {
      expect(() => bad(...args)).toThrow(
        expect.objectContaining({
          code: 'ERR_PICOP_INVALID_ARG',
          message: expect.stringContaining('perEnvironment(create, { destroy })'),
        }),
      );
    }
  });
});
