/** The 12-byte signature every PiCoP header starts with (shared with PROXY protocol v2). */
export const SIGNATURE: Readonly<Uint8Array> = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
);

export const SIGNATURE_LENGTH = 12;

/** Byte 12: upper nibble 0, lower nibble the version. */
export const VERSION_BYTE = 0x01;

/** Default cap on the context length, in bytes. */
export const DEFAULT_MAX_LENGTH = 4096;

/** The largest context the spec's 2-byte length can carry. */
export const SPEC_MAX_LENGTH = 0xffff;

/** The largest context the Go reference's 1-byte length can carry. */
export const PICOP_GO_MAX_LENGTH = 0xff;

/** Bytes before the context: signature, version and length (2 bytes in the spec, 1 in picop-go). */
export const SPEC_PREFIX_LENGTH = 15;
export const PICOP_GO_PREFIX_LENGTH = 14;

/** How long a receiver waits for a complete header, by default, in ms. */
export const DEFAULT_HEADER_TIMEOUT_MS = 5_000;
