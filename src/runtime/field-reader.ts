// The one schema walker for JSON input from outside: node configs (config.ts), cluster files and
// simulator scenarios (simulations/scenario.ts). Each reader takes the raw value and its field path,
// and every problem is a ConfigError naming the source, the field and the reason, worded the same
// wherever the input came from.

export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor (readonly source: string, readonly field: string, readonly reason: string) {
    super(`${source}: ${field === '' ? '' : `${field}: `}${reason}`)
  }
}

export interface StringRule {
  /** Default 4096. */
  maxLength?: number
  pattern?: RegExp
  /** Says what the pattern wants, for the error: "must be <hint>, got …". */
  patternHint?: string
}

export class FieldReader {
  constructor (readonly source: string) {}

  fail (field: string, reason: string): never { throw new ConfigError(this.source, field, reason) }

  /** An object with only `allowed` keys, and every `required` key present. */
  object (value: unknown, field: string, allowed: readonly string[], required: readonly string[] = []): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.fail(field, `must be an object, got ${describe(value)}`)
    const record = value as Record<string, unknown>
    for (const key of Object.keys(record)) {
      if (!allowed.includes(key)) this.fail(join(field, key), `unknown key (allowed: ${allowed.join(', ')})`)
    }
    for (const key of required) if (record[key] === undefined) this.fail(join(field, key), 'is required')
    return record
  }

  array (value: unknown, field: string, minItems: number, maxItems: number): unknown[] {
    if (!Array.isArray(value)) this.fail(field, `must be an array, got ${describe(value)}`)
    if (value.length < minItems) this.fail(field, `must have at least ${minItems} ${minItems === 1 ? 'entry' : 'entries'}`)
    if (value.length > maxItems) this.fail(field, `more than ${maxItems} entries`)
    return value
  }

  string (value: unknown, field: string, rule: StringRule = {}): string {
    const maxLength = rule.maxLength ?? 4096
    if (typeof value !== 'string') this.fail(field, `must be a string, got ${describe(value)}`)
    if (value.length === 0) this.fail(field, 'must not be empty')
    if (value.length > maxLength) this.fail(field, `longer than ${maxLength} characters`)
    if (rule.pattern !== undefined && !rule.pattern.test(value)) this.fail(field, `must be ${rule.patternHint ?? `like ${String(rule.pattern)}`}, got ${JSON.stringify(value)}`)
    return value
  }

  /** An array of non-empty strings (`field[i]` named in errors). */
  strings (value: unknown, field: string, maxItems = 64): string[] {
    if (!Array.isArray(value)) this.fail(field, `must be an array of strings, got ${describe(value)}`)
    if (value.length > maxItems) this.fail(field, `more than ${maxItems} entries`)
    return value.map((item, index) => this.string(item, `${field}[${index}]`))
  }

  number (value: unknown, field: string, min: number, max: number, integer = true): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(field, `must be a number, got ${describe(value)}`)
    if (integer && !Number.isInteger(value)) this.fail(field, `must be an integer, got ${value}`)
    if (value < min || value > max) this.fail(field, `must be between ${min} and ${max}, got ${value}`)
    return value
  }

  optionalNumber (value: unknown, field: string, min: number, max: number, fallback: number, integer = true): number {
    return value === undefined ? fallback : this.number(value, field, min, max, integer)
  }

  /** A boolean, or `fallback` when absent. */
  optionalBoolean (value: unknown, field: string, fallback: boolean): boolean {
    if (value === undefined) return fallback
    if (typeof value !== 'boolean') this.fail(field, `must be true or false, got ${describe(value)}`)
    return value
  }
}

/** `field.key`, or `key` at the top level. */
export function join (field: string, key: string): string { return field === '' ? key : `${field}.${key}` }

/** A value as an error message names it: its type, and short strings and numbers themselves. */
export function describe (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${String(value)}`
}
