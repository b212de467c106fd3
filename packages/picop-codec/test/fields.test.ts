import { PicopFields } from '@picop/codec';
import { describe, expect, it } from 'vitest';

describe('PicopFields', () => {
  it('compares names case-insensitively and keeps the first casing', () => {
    const f = new PicopFields();
    f.set('Env-Id', 'a').set('ENV-ID', 'b');
    expect(f.size).toBe(1);
    expect(f.get('env-id')).toBe('b');
    expect([...f]).toEqual([['Env-Id', 'b']]);
  });

  it('iterates in insertion order and deletes', () => {
    const f = new PicopFields([
      ['b', '1'],
      ['A', '2'],
      ['c', '3'],
    ]);
    expect([...f.keys()]).toEqual(['b', 'A', 'c']);
    expect(f.delete('a')).toBe(true);
    expect(f.delete('a')).toBe(false);
    expect(f.has('A')).toBe(false);
    expect(f.toJSON()).toEqual({ b: '1', c: '3' });
  });

  it('is built from an object, an iterable or another PicopFields', () => {
    const a = new PicopFields({ x: '1' });
    const b = new PicopFields(new Map([['x', '1']]));
    const c = new PicopFields(a);
    expect([...a]).toEqual([...b]);
    expect([...c]).toEqual([['x', '1']]);
    c.set('y', '2');
    expect(a.has('y')).toBe(false);
  });
});
