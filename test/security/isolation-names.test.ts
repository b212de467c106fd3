// Names the store keeps: an isolation name that PostgreSQL or MySQL would truncate or fold (so two
// environments could share one schema or database) is refused before anything is written.
import { createPool } from '@picop/mysql';
import { Pool } from '@picop/pg';
import { withEnvId } from '@picop/propagator';
import { describe, expect, it } from 'vitest';
import { useContextManager } from '../support/otel-and-tls.js';
import { MYSQL_PORT, PG_PORT } from '../support/servers.js';

useContextManager();

// Two environments whose names differ only past the store's limit once the template is applied.
const PAIR = [`${'a'.repeat(40)}-one`, `${'a'.repeat(40)}-two`];
const created: string[] = [];
const create = async ({ envId }: { envId: string }) => {
  created.push(envId);
};

async function refusesAll(query: () => Promise<unknown>, envIds: string[]) {
  for (const envId of envIds) {
    await expect(withEnvId(envId, query)).rejects.toMatchObject({
      code: 'ERR_PICOP_INVALID_ARG',
      message: expect.stringContaining('two environments could share it'),
    });
  }
}

describe('isolation names the store would alter', () => {
  it('PostgreSQL: a schema over 63 bytes, or with upper case, is refused', async () => {
    created.length = 0;
    const pool = new Pool({
      host: '127.0.0.1',
      port: PG_PORT,
      user: 'postgres',
      database: 'postgres',
      picop: { isolate: { schema: (id) => `sectest_preview_environment_${id}`, create } },
    });
    try {
      await refusesAll(() => pool.query('SELECT 1'), [...PAIR, 'Feature-1']);
      expect(created).toEqual([]);
      // A database name over the limit, the same.
      const pool2 = new Pool({
        host: '127.0.0.1',
        port: PG_PORT,
        user: 'postgres',
        database: 'postgres',
        picop: { isolate: { database: (id) => `x_${id}`.repeat(40) } },
      });
      await refusesAll(() => pool2.query('SELECT 1'), ['feature-1']);
      await pool2.end();
    } finally {
      await pool.end();
    }
  });

  it('MySQL: a database over 64 characters, or with upper case, is refused', async () => {
    created.length = 0;
    const pool = createPool({
      host: '127.0.0.1',
      port: MYSQL_PORT,
      user: 'root',
      picop: {
        isolate: { database: (id) => `sectest_preview_environment_database_${id}`, create },
      },
    });
    try {
      await refusesAll(() => pool.query('SELECT 1'), [...PAIR, 'Feature-1']);
      expect(created).toEqual([]);
    } finally {
      await pool.end();
    }
  });
});
