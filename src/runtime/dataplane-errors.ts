// Errors of the Dataplane port's adapters; callers branch on `name` (and `step`: start, key, read,
// apply, or the tool that failed).

export class DataplaneError extends Error {
  override name = 'DataplaneError'
  constructor (readonly step: string, message: string, options?: { cause?: unknown }) {
    super(`dataplane ${step}: ${message}`, options)
  }
}
