// The header's fixed bytes, from the codec: tests spell headers as `${SIGNATURE_HEX}01…` rather
// than repeating the signature's hex.
import { SIGNATURE } from '@picop/codec';

/** The 12-byte PiCoP signature, as hex. */
export const SIGNATURE_HEX = Buffer.from(SIGNATURE).toString('hex');
