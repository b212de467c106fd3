import { describe, expect, it } from 'vitest';
import { READ_PATH } from '../src/read-path.js';

describe('read path', () => {
  it('is the fast one where Node has what it needs, and the portable one when told', () => {
    // This file runs in both projects: `default` and `proxy-portable` (PICOP_PROXY_RELAY=portable).
    expect(READ_PATH).toBe(process.env.PICOP_PROXY_RELAY === 'portable' ? 'portable' : 'onread');
  });
});
