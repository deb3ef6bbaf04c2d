// Command-line numbers for the benchmarks: a bad one is named and exits 2, as the CLI's do.

/** `text` as a whole number in [1, max], or exit 2 naming `--name`. */
export function positiveFlag (name: string, text: string | undefined, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < 1 || value > max) { console.error(`--${name} must be a positive integer, got ${text}`); process.exit(2) }
  return value
}
