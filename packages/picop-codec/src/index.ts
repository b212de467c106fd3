export {
  DEFAULT_HEADER_TIMEOUT_MS,
  DEFAULT_MAX_LENGTH,
  PICOP_GO_MAX_LENGTH,
  PICOP_GO_PREFIX_LENGTH,
  SIGNATURE,
  SPEC_MAX_LENGTH,
  SPEC_PREFIX_LENGTH,
} from './constants.js';
export type { DecodedHeader, SignatureMatch } from './decode.js';
export { decodeHeader, matchSignature } from './decode.js';
export { encodeHeader } from './encode.js';
export { envIdProblem, MAX_ENV_ID_LENGTH } from './env-id.js';
export type { HeaderDecoderResult } from './HeaderDecoder.js';
export { HeaderDecoder } from './HeaderDecoder.js';
export type { HeaderReaderOptions, HeaderReadResult } from './HeaderReader.js';
export { HeaderReader } from './HeaderReader.js';
export type { CodecOptions, Dialect } from './options.js';
export type { PicopErrorCode, PicopErrorOptions } from './PicopError.js';
export { isPicopError, PicopError } from './PicopError.js';
export type { FieldsInit } from './PicopFields.js';
export { PicopFields } from './PicopFields.js';
