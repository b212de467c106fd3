import { SIGNATURE } from './constants.js';
import { matchSignature } from './decode.js';
import { HeaderDecoder } from './HeaderDecoder.js';
import type { Dialect } from './options.js';
import { PicopError } from './PicopError.js';
import type { PicopFields } from './PicopFields.js';

/** Options of {@link HeaderReader}. */
export interface HeaderReaderOptions {
  /**
   * `'required'`: a stream without a header fails with `ERR_PICOP_SIGNATURE`.
   * `'optional'`: a stream that does not start with the signature is a plain stream, decided at
   * its first byte that differs. Only for protocols whose client speaks first.
   * @default 'required'
   */
  mode?: 'required' | 'optional';
  /** @default 4096 */
  maxLength?: number;
  /** @default 'spec' */
  dialect?: Dialect;
}

/** What {@link HeaderReader} decided. */
export interface HeaderReadResult {
  /** The header's fields, or `undefined` for a plain stream (optional mode). */
  fields: PicopFields | undefined;
  /**
   * The stream's bytes after the header (for a plain stream, every byte so far). May be a view
   * of the last chunk pushed: copy it before that chunk's memory is reused.
   */
  rest: Buffer;
}

/**
 * The header reading of a receiver, without a socket: feed it the stream's first chunks
 * until it decides. For servers that read sockets through `onread` into a reused buffer; the
 * reader keeps copies of what it holds, never the chunks given to it.
 *
 * @example
 * const reader = new HeaderReader({ mode: 'optional' });
 * const result = reader.push(chunk); // undefined: push the next chunk
 * if (result) route(result.fields?.get('env-id'), result.rest);
 */
export class HeaderReader {
  readonly #decoder: HeaderDecoder;
  // Optional mode: bytes held while they still agree with the signature (at most 12).
  #held: Buffer | undefined;

  constructor(options: HeaderReaderOptions = {}) {
    this.#decoder = new HeaderDecoder({ maxLength: options.maxLength, dialect: options.dialect });
    this.#held = options.mode === 'optional' ? Buffer.alloc(0) : undefined;
  }

  /** Bytes of the stream taken so far (for messages). */
  get bytesRead(): number {
    return this.#held?.length ?? this.#decoder.bytesRead;
  }

  /**
   * Feeds the next chunk. Returns `undefined` until the header (or its absence) is decided.
   * Throws `PicopError` as soon as a byte is wrong.
   */
  push(chunk: Uint8Array): HeaderReadResult | undefined {
    const held = this.#held;
    if (held !== undefined) {
      const seen = held.length === 0 ? asBuffer(chunk) : Buffer.concat([held, chunk]);
      const match = matchSignature(seen);
      if (match === 'mismatch') return { fields: undefined, rest: seen };
      if (match === 'partial') {
        this.#held = Buffer.from(seen);
        return undefined;
      }
      this.#held = undefined;
      chunk = seen;
    }
    return this.#decoder.push(chunk);
  }

  /** The `ERR_PICOP_TIMEOUT` to fail with when no decision came within `timeoutMs`. */
  timeoutError(timeoutMs: number, peer: string): PicopError {
    return new PicopError(
      'ERR_PICOP_TIMEOUT',
      `No complete PiCoP header within ${timeoutMs} ms (got ${this.bytesRead} of at least ${SIGNATURE.length + 3} bytes) from ${peer}: raise \`timeoutMs\``,
    );
  }

  /** The `ERR_PICOP_TRUNCATED` to fail with when the connection closed before a decision. */
  closedError(): PicopError {
    return new PicopError(
      'ERR_PICOP_TRUNCATED',
      `Connection closed after ${this.bytesRead} bytes of the PiCoP header`,
    );
  }

  /**
   * The stream ended before a decision. In optional mode with no byte at all this is a plain
   * stream (empty `rest`); otherwise it throws `ERR_PICOP_TRUNCATED`.
   */
  end(): HeaderReadResult {
    if (this.#held !== undefined && this.#held.length === 0) {
      return { fields: undefined, rest: this.#held };
    }
    this.#decoder.end();
    // The decoder's end() throws for every header not yet returned.
    throw new PicopError('ERR_PICOP_INVALID_STATE', 'HeaderReader already returned the header');
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
