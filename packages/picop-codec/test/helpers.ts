import { type CodecOptions, HeaderDecoder, type HeaderDecoderResult } from '@picop/codec';

export const SIG_HEX = '0d0a0d0a000d0a515549540a';

export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

/** Feeds `chunks` to a fresh decoder; returns the result and everything after the header. */
export function decodeChunks(
  chunks: Buffer[],
  options?: CodecOptions,
): { result: HeaderDecoderResult; after: Buffer } {
  const decoder = new HeaderDecoder(options);
  let result: HeaderDecoderResult | undefined;
  const after: Buffer[] = [];
  for (const chunk of chunks) {
    if (result) after.push(chunk);
    else {
      result = decoder.push(chunk);
      if (result) after.push(result.rest);
    }
  }
  if (!result) decoder.end();
  return { result: result as HeaderDecoderResult, after: Buffer.concat(after) };
}

/** The three ways every fixture is fed: whole, byte by byte, and split in two at every offset. */
export function splits(bytes: Buffer): Array<{ how: string; chunks: Buffer[] }> {
  const out = [{ how: 'whole', chunks: [bytes] }];
  out.push({ how: 'byte by byte', chunks: [...bytes].map((b) => Buffer.of(b)) });
  for (let at = 1; at < bytes.length; at++) {
    out.push({ how: `split at ${at}`, chunks: [bytes.subarray(0, at), bytes.subarray(at)] });
  }
  return out;
}

/** Runs `fn` and returns the error it threw (fails if it did not throw). */
export function thrown(fn: () => unknown): Error & { code?: string; offset?: number } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string; offset?: number };
  }
  throw new Error('expected a throw');
}
