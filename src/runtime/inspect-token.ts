// The bearer token that guards a node's inspection stream. The stream shows every actor's state and
// every event on the node, so a status API bound anywhere but loopback must not serve it to anyone
// who can connect: config requires a token there, and the API compares it in constant time.
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'

/** Shorter tokens are guessable; `openssl rand -hex 16` gives 32 characters. */
export const MIN_INSPECT_TOKEN_LENGTH = 16
export const MAX_INSPECT_TOKEN_LENGTH = 1024
const TOKEN_PATTERN = /^[\x21-\x7e]+$/

export class InspectTokenError extends Error {
  override name = 'InspectTokenError'
}

/** 127.0.0.0/8, ::1 (also as an IPv4-mapped address) and the name localhost. */
export function isLoopbackHost (host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (bare.toLowerCase() === 'localhost') return true
  const family = isIP(bare)
  if (family === 4) return bare.startsWith('127.')
  if (family === 6) {
    const lower = bare.toLowerCase()
    return lower === '::1' || lower === '0:0:0:0:0:0:0:1' || /^::ffff:127\.\d+\.\d+\.\d+$/.test(lower)
  }
  return false
}

/** Why a token is unusable, or undefined. Printable ASCII without spaces, so it fits a header. */
export function tokenProblem (token: string): string | undefined {
  if (token.length < MIN_INSPECT_TOKEN_LENGTH) return `must be at least ${MIN_INSPECT_TOKEN_LENGTH} characters, got ${token.length}`
  if (token.length > MAX_INSPECT_TOKEN_LENGTH) return `must be at most ${MAX_INSPECT_TOKEN_LENGTH} characters`
  if (!TOKEN_PATTERN.test(token)) return 'must be printable ASCII without spaces'
  return undefined
}

/** The token in a file (surrounding whitespace, such as a final newline, ignored). */
export function readInspectToken (path: string): string {
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new InspectTokenError(`${path}: ${code === 'ENOENT' ? 'file not found' : (error as Error).message}`)
  }
  const token = text.trim()
  const problem = tokenProblem(token)
  if (problem !== undefined) throw new InspectTokenError(`${path}: the token ${problem}`)
  return token
}

/**
 * Whether an Authorization header carries the token. Both sides are hashed first, so the
 * comparison takes the same time whatever the header's length or how much of it matches.
 */
export function bearerMatches (header: string | undefined, token: string): boolean {
  if (header === undefined) return false
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (match === null) return false
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest()
  return timingSafeEqual(digest(match[1]!), digest(token))
}
