import {
  DEFAULT_MAX_LENGTH,
  PICOP_GO_MAX_LENGTH,
  PICOP_GO_PREFIX_LENGTH,
  SPEC_MAX_LENGTH,
  SPEC_PREFIX_LENGTH,
} from './constants.js';
import { PicopError } from './PicopError.js';

/** Which wire layout to read or write. */
export type Dialect = 'spec' | 'picop-go';

/** Options shared by the encoder and the decoders. */
export interface CodecOptions {
  /**
   * `'spec'`: 2-byte length, ':' allowed in values (the paper's format).
   * `'picop-go'`: 1-byte length, no ':' in values (what the Go reference library writes).
   * @default 'spec'
   */
  dialect?: Dialect;
  /**
   * Largest context accepted or produced, in bytes (the header adds 15, or 14 in picop-go).
   * At most 65535 (255 in picop-go, where the default is capped to 255).
   * @default 4096
   */
  maxLength?: number;
}

export interface ResolvedOptions {
  readonly dialect: Dialect;
  readonly maxLength: number;
  readonly prefixLength: number;
}

const DEFAULT_SPEC: ResolvedOptions = {
  dialect: 'spec',
  maxLength: DEFAULT_MAX_LENGTH,
  prefixLength: SPEC_PREFIX_LENGTH,
};
const DEFAULT_GO: ResolvedOptions = {
  dialect: 'picop-go',
  maxLength: PICOP_GO_MAX_LENGTH,
  prefixLength: PICOP_GO_PREFIX_LENGTH,
};

export function resolveOptions(options: CodecOptions | undefined): ResolvedOptions {
  if (options === undefined) return DEFAULT_SPEC;
  const { dialect = 'spec', maxLength } = options;
  if (dialect !== 'spec' && dialect !== 'picop-go') {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `Unknown PiCoP dialect ${JSON.stringify(dialect)}: set \`dialect\` to 'spec' or 'picop-go'`,
    );
  }
  const base = dialect === 'spec' ? DEFAULT_SPEC : DEFAULT_GO;
  if (maxLength === undefined) return base;
  const limit = dialect === 'spec' ? SPEC_MAX_LENGTH : PICOP_GO_MAX_LENGTH;
  if (!Number.isInteger(maxLength) || maxLength < 0 || maxLength > limit) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `\`maxLength\` must be an integer from 0 to ${limit} for dialect '${dialect}', got ${String(maxLength)}`,
    );
  }
  return { dialect, maxLength, prefixLength: base.prefixLength };
}
