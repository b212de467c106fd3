import { context, defaultTextMapGetter, ROOT_CONTEXT } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { PicopFields } from '@picop/codec';
import {
  contextFromFields,
  EnvIdPropagator,
  envIdProblem,
  getEnvId,
  headerForContext,
  MAX_ENV_ID_LENGTH,
  setEnvId,
  withEnvId,
} from '@picop/propagator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEX } from '../../../test/support/header.js';

describe('Env-Id helpers', () => {
  describe('without a context manager', () => {
    it('withEnvId() throws ERR_PICOP_INVALID_STATE instead of running in no environment', () => {
      expect(() => withEnvId('feature-1', () => 1)).toThrow(
        expect.objectContaining({ code: 'ERR_PICOP_INVALID_STATE' }),
      );
    });
  });

  describe('with a context manager', () => {
    const manager = new AsyncLocalStorageContextManager();
    beforeAll(() => {
      context.setGlobalContextManager(manager.enable());
    });
    afterAll(() => {
      context.disable();
    });

    it('withEnvId() sets the Env-Id for sync and async work inside, and only there', async () => {
      expect(getEnvId()).toBeUndefined();
      const seen = await withEnvId(
        'feature-1',
        async (x: number) => {
          const before = getEnvId();
          // pacing: the context must survive a timer, the subject of this test
          await new Promise((r) => setTimeout(r, 5));
          return [before, getEnvId(), x];
        },
        7,
      );
      expect(seen).toEqual(['feature-1', 'feature-1', 7]);
      expect(getEnvId()).toBeUndefined();
    });

    it('nests, the inner Env-Id winning', () => {
      withEnvId('a', () => {
        withEnvId('b', () => expect(getEnvId()).toBe('b'));
        expect(getEnvId()).toBe('a');
      });
    });

    it('setEnvId() throws ERR_PICOP_INVALID_ARG for an invalid Env-Id', () => {
      for (const bad of ['', 'a\r\nb', 'é', 'x'.repeat(MAX_ENV_ID_LENGTH + 1)]) {
        expect(() => setEnvId(ROOT_CONTEXT, bad)).toThrow(
          expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
        );
      }
      expect(() => withEnvId('a b', () => 1)).toThrow(
        expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
      );
    });

    it('reads and sets every Env-Id a propagator with a raised maxLength accepted', () => {
      const id = 'x'.repeat(300);
      const edge = new EnvIdPropagator({ maxLength: 300 });
      const ctx = edge.extract(ROOT_CONTEXT, { 'env-id': id }, defaultTextMapGetter);
      expect(getEnvId(ctx)).toBe(id);
      expect(getEnvId(setEnvId(ROOT_CONTEXT, id))).toBe(id);
      expect(headerForContext(ctx).subarray(15).toString()).toBe(`Env-Id:${id}`);
    });

    it('EnvIdPropagator refuses a maxLength longer than an Env-Id may be', () => {
      expect(() => new EnvIdPropagator({ maxLength: MAX_ENV_ID_LENGTH + 1 })).toThrow(
        expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
      );
      expect(new EnvIdPropagator({ maxLength: MAX_ENV_ID_LENGTH })).toBeInstanceOf(EnvIdPropagator);
    });

    it('envIdProblem() explains what is wrong', () => {
      expect(envIdProblem('feature-1')).toBeUndefined();
      expect(envIdProblem('a\nb')).toMatch(
        /^has a line feed \(U\+000A\) at index 1: an Env-Id is 1 to 4089 visible ASCII characters/,
      );
      expect(envIdProblem('feature 1')).toMatch(/^has a space \(U\+0020\) at index 7/);
      expect(envIdProblem('caf\u00e9')).toMatch(/^has "\u00e9" \(U\+00E9\) at index 3/);
      expect(envIdProblem(3)).toBe('is a number, not a string');
    });

    it('headerForContext() encodes the active Env-Id, or an empty header', () => {
      const hex = withEnvId('feature-1', () => headerForContext().toString('hex'));
      expect(hex).toBe(`${SIGNATURE_HEX}010010${Buffer.from('Env-Id:feature-1').toString('hex')}`);
      expect(headerForContext().toString('hex')).toBe(`${SIGNATURE_HEX}010000`);
      expect(headerForContext(ROOT_CONTEXT, { dialect: 'picop-go' }).toString('hex')).toBe(
        `${SIGNATURE_HEX}0100`,
      );
      expect(
        headerForContext(setEnvId(ROOT_CONTEXT, 'x'), { dialect: 'picop-go' }).toString('hex'),
      ).toBe(`${SIGNATURE_HEX}0108${Buffer.from('Env-Id:x').toString('hex')}`);
    });

    it('headerForContext() uses the given propagator', () => {
      const tenant = new EnvIdPropagator({ fieldName: 'Tenant' });
      const header = headerForContext(setEnvId(ROOT_CONTEXT, 't1'), { propagator: tenant });
      expect(header.subarray(15).toString()).toBe('Tenant:t1');
    });

    it('contextFromFields() puts received fields into a context', () => {
      const ctx = contextFromFields(new PicopFields({ 'ENV-ID': 'feature-2' }), ROOT_CONTEXT);
      expect(getEnvId(ctx)).toBe('feature-2');
      expect(getEnvId(contextFromFields(new PicopFields(), ROOT_CONTEXT))).toBeUndefined();
    });
  });
});
