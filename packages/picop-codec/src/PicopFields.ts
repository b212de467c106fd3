/** Anything {@link encodeHeader} and {@link PicopFields} accept as fields. */
export type FieldsInit =
  | PicopFields
  | Iterable<readonly [string, string]>
  | Readonly<Record<string, string>>;

/**
 * Adds a field the decoder has validated, `key` being the lower-cased name.
 * Returns false, adding nothing, when a field of that name exists. Not exported from the package.
 */
export let addValidatedField: (
  fields: PicopFields,
  key: string,
  name: string,
  value: string,
) => boolean;

/**
 * The fields of a PiCoP header: a small map whose names compare case-insensitively,
 * kept in insertion order with the casing they were first set with.
 *
 * @example
 * const fields = new PicopFields({ 'Env-Id': 'feature-1' });
 * fields.get('env-id'); // 'feature-1'
 */
export class PicopFields implements Iterable<[string, string]> {
  // lower-cased name -> [name as set, value]
  readonly #entries = new Map<string, [string, string]>();

  constructor(init?: FieldsInit) {
    if (init === undefined) return;
    for (const [name, value] of entriesOf(init)) this.set(name, value);
  }

  /** The value of `name` (any casing), or `undefined`. */
  get(name: string): string | undefined {
    return this.#entries.get(name.toLowerCase())?.[1];
  }

  /** Sets `name` to `value`, replacing the value (and keeping the casing) of an existing field. */
  set(name: string, value: string): this {
    const key = name.toLowerCase();
    const entry = this.#entries.get(key);
    if (entry === undefined) this.#entries.set(key, [name, value]);
    else entry[1] = value;
    return this;
  }

  has(name: string): boolean {
    return this.#entries.has(name.toLowerCase());
  }

  delete(name: string): boolean {
    return this.#entries.delete(name.toLowerCase());
  }

  get size(): number {
    return this.#entries.size;
  }

  /** `[name, value]` pairs in insertion order, names in their original casing. */
  *entries(): IterableIterator<[string, string]> {
    for (const [name, value] of this.#entries.values()) yield [name, value];
  }

  *keys(): IterableIterator<string> {
    for (const entry of this.#entries.values()) yield entry[0];
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** A plain object of the fields, names in their original casing. */
  toJSON(): Record<string, string> {
    return Object.fromEntries(this.entries());
  }

  static {
    addValidatedField = (fields, key, name, value) => {
      if (fields.#entries.has(key)) return false;
      fields.#entries.set(key, [name, value]);
      return true;
    };
  }
}

export function entriesOf(init: FieldsInit): Iterable<readonly [string, string]> {
  if (init instanceof PicopFields) return init.entries();
  if (typeof (init as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return init as Iterable<readonly [string, string]>;
  }
  return Object.entries(init as Record<string, string>);
}
