// The schema walker scenario files are read with (simulations/scenario.ts and scenario-faults.ts):
// each reader takes the raw value and its field path, and every problem is a ConfigError naming the
// file, the field and the reason.
import { ConfigError } from '../src/runtime/config.ts'

export const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/
export const NAME_HINT = 'lowercase letters, digits and dashes (at most 63)'
export const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
export const NODE_ID_HINT = 'letters, digits, ".", "_" and "-" (at most 64)'

/** A small schema walker: each reader takes the raw value and its field path. */
export class Reader {
  constructor (readonly source: string) {}

  fail (field: string, reason: string): never { throw new ConfigError(this.source, field, reason) }

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

  string (value: unknown, field: string, pattern?: RegExp, hint?: string, maxLength = 4096): string {
    if (typeof value !== 'string') this.fail(field, `must be a string, got ${describe(value)}`)
    if (value.length === 0) this.fail(field, 'must not be empty')
    if (value.length > maxLength) this.fail(field, `longer than ${maxLength} characters`)
    if (pattern !== undefined && !pattern.test(value)) this.fail(field, `must be ${hint ?? `like ${String(pattern)}`}, got ${JSON.stringify(value)}`)
    return value
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
}

export function join (field: string, key: string): string { return field === '' ? key : `${field}.${key}` }

export function describe (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${String(value)}`
}

/** A boolean field, or `fallback` when absent. */
export function optionalBoolean (reader: Reader, value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') reader.fail(field, `must be true or false, got ${describe(value)}`)
  return value
}
