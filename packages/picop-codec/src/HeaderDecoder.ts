import { asBuffer, checkPrefixByte, parseContext, readPrefix, truncated } from './decode.js';
import { type CodecOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { PicopError } from './PicopError.js';
import type { PicopFields } from './PicopFields.js';

/** What {@link HeaderDecoder.push} returns once the header is complete. */
export interface HeaderDecoderResult {
  fields: PicopFields;
  /** The bytes after the header in the chunk that completed it (may be empty). */
  rest: Buffer;
}

/**
 * Decodes a header that arrives in chunks of any size. Keeps at most the header in memory.
 * After a result or an error the decoder is finished: a further `push` throws.
 *
 * @example
 * const decoder = new HeaderDecoder();
 * socket.on('data', (chunk) => {
 *   const done = decoder.push(chunk); // undefined until the header is complete
 *   if (done) route(done.fields.get('env-id'), done.rest);
 * });
 * socket.on('end', () => decoder.end()); // ERR_PICOP_TRUNCATED if the header is incomplete
 */
export class HeaderDecoder {
  readonly #o: ResolvedOptions;
  #read = 0;
  #prefix: Buffer | undefined;
  #context: Buffer | undefined;
  #contextLength = -1;
  #finished = false;
  #error: unknown;

  constructor(options?: CodecOptions) {
    this.#o = resolveOptions(options);
  }

  /** Header bytes consumed so far. */
  get bytesRead(): number {
    return this.#read;
  }

  /** True once `push` has returned a result or thrown. */
  get finished(): boolean {
    return this.#finished;
  }

  /**
   * Feeds the next chunk. Returns `undefined` while the header is incomplete, then the fields and
   * the rest of that chunk. Throws {@link PicopError} as soon as a byte is wrong.
   */
  push(chunk: Uint8Array): HeaderDecoderResult | undefined {
    if (this.#finished) {
      if (this.#error !== undefined) throw this.#error;
      throw new PicopError('ERR_PICOP_INVALID_STATE', 'HeaderDecoder already returned the header');
    }
    try {
      const result = this.#push(asBuffer(chunk));
      if (result !== undefined) this.#finish(undefined);
      return result;
    } catch (err) {
      this.#finish(err);
      throw err;
    }
  }

  /**
   * Tells the decoder the stream ended. Throws `ERR_PICOP_TRUNCATED` if the header is incomplete
   * (including when no byte arrived at all); does nothing once the header was returned.
   */
  end(): void {
    if (this.#finished) return;
    const need =
      this.#contextLength < 0 ? this.#o.prefixLength : this.#o.prefixLength + this.#contextLength;
    const err = truncated(this.#read, need);
    this.#finish(err);
    throw err;
  }

  #finish(err: unknown): void {
    this.#finished = true;
    this.#error = err;
    this.#prefix = undefined;
    this.#context = undefined;
  }

  #push(chunk: Buffer): HeaderDecoderResult | undefined {
    const { prefixLength } = this.#o;
    let i = 0;
    if (this.#read === 0 && chunk.length >= prefixLength) {
      // The whole prefix in the first chunk (the usual case): no copy.
      this.#contextLength = readPrefix(chunk, this.#o);
      const end = prefixLength + this.#contextLength;
      if (chunk.length >= end) {
        this.#read = end;
        return {
          fields: parseContext(chunk, prefixLength, end, this.#o),
          rest: chunk.subarray(end),
        };
      }
      i = prefixLength;
      this.#read = prefixLength;
      this.#context = Buffer.allocUnsafe(this.#contextLength);
    }
    while (this.#read < prefixLength) {
      if (i === chunk.length) return undefined;
      const byte = chunk[i++] as number;
      const at = this.#read++;
      checkPrefixByte(byte, at);
      this.#prefix ??= Buffer.alloc(prefixLength);
      this.#prefix[at] = byte;
      if (this.#read === prefixLength) {
        this.#contextLength = readPrefix(this.#prefix, this.#o);
        this.#context = Buffer.allocUnsafe(this.#contextLength);
        this.#prefix = undefined;
      }
    }
    const context = this.#context as Buffer;
    const have = this.#read - prefixLength;
    const take = Math.min(this.#contextLength - have, chunk.length - i);
    chunk.copy(context, have, i, i + take);
    this.#read += take;
    i += take;
    if (have + take < this.#contextLength) return undefined;
    return {
      fields: parseContext(context, 0, this.#contextLength, this.#o),
      rest: chunk.subarray(i),
    };
  }
}
