/**
 * Longest valid Env-Id, in characters: the one rule the helpers, the pools and the proxy share.
 * `Env-Id:` and the value fit the default 4096-byte header.
 */
export const MAX_ENV_ID_LENGTH = 4096 - 'Env-Id:'.length;

/**
 * Why `value` is not a valid Env-Id, or `undefined` when it is: 1 to {@link MAX_ENV_ID_LENGTH}
 * visible ASCII characters (0x21-0x7E). CR, LF, NUL, spaces and non-ASCII characters are refused,
 * so an Env-Id can never add a field to a PiCoP header or a line to a log. This one rule is shared
 * by `getEnvId`, `setEnvId`, the wrappers' pools, the proxy's routes and the gateway, so an Env-Id
 * that any of them accepted is never read as "none" further on.
 */
export function envIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `is a ${typeof value}, not a string`;
  if (value.length === 0) return 'is empty';
  if (value.length > MAX_ENV_ID_LENGTH) {
    return `is ${value.length} characters, over the ${MAX_ENV_ID_LENGTH} an Env-Id may have`;
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) {
      return `has ${describeChar(value.codePointAt(i) as number)} at index ${i}: an Env-Id is 1 to ${MAX_ENV_ID_LENGTH} visible ASCII characters (letters, digits, punctuation such as "-", "_", "."), with no space, control or non-ASCII character`;
    }
  }
  return undefined;
}

const NAMED: Record<number, string> = {
  9: 'a tab',
  10: 'a line feed',
  13: 'a carriage return',
  32: 'a space',
  127: 'a DEL',
};

/** A character for a person: `a space`, `"é" (U+00E9)`, `a control character (U+0000)`. */
function describeChar(code: number): string {
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  if (NAMED[code] !== undefined) return `${NAMED[code]} (${hex})`;
  if (code < 0x20) return `a control character (${hex})`;
  return `${JSON.stringify(String.fromCodePoint(code))} (${hex})`;
}
