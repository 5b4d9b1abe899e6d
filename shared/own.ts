// Ids from outside (product ids, categories, map keys in shop documents) are data: a plain
// object read as `record[id]` answers `constructor` or `__proto__` from its prototype. Every
// lookup of such a key in an object that came from JSON goes through `own`.

/** `record[key]` when `record` has it as its own property, else undefined. */
export function own<V>(record: Readonly<Record<string, V>>, key: string): V | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined
}
