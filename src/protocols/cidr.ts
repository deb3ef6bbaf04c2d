// CIDR prefixes (RFC 4632 for IPv4, RFC 4291 §2.3 for IPv6) parsed strictly into one canonical text,
// so that a prefix is a usable map key: two spellings of the same prefix must never become two
// routes. IPv4 is dotted decimal without leading zeros (a leading zero means octal to some parsers);
// IPv6 is accepted in any RFC 4291 §2.2 spelling (including an embedded dotted IPv4 tail) and
// printed per RFC 5952 §4: lower case, no leading zeros, the longest run of two or more zero groups
// (the first on a tie) compressed to "::". Mixed notation is never printed, so every IPv6 prefix
// has exactly one canonical spelling. Host bits must be zero: "10.0.0.1/24" is a mistake, not 10.0.0.0/24.

export interface ParsedPrefix {
  family: 4 | 6
  /** Normalised network address. */
  address: string
  length: number
  /** Canonical "address/length". */
  text: string
}

export interface ParsedAddress {
  family: 4 | 6
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array
}

/** The longest spelling accepted: a full IPv6 address with an IPv4 tail and "/128" is 49. */
export const MAX_PREFIX_TEXT_LENGTH = 64

export class PrefixError extends Error {
  override name = 'PrefixError'
  constructor (readonly input: string, readonly reason: string) {
    super(`prefix ${JSON.stringify(input.length > MAX_PREFIX_TEXT_LENGTH ? `${input.slice(0, MAX_PREFIX_TEXT_LENGTH)}…` : input)}: ${reason}`)
  }
}

const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/
const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/

function parseIpv4 (text: string, input: string): Uint8Array {
  const parts = text.split('.')
  if (parts.length !== 4) throw new PrefixError(input, `IPv4 address "${text}" must have 4 dotted parts`)
  const bytes = new Uint8Array(4)
  parts.forEach((part, index) => {
    if (!DECIMAL_OCTET.test(part)) throw new PrefixError(input, `IPv4 part "${part}" must be decimal without leading zeros`)
    const value = Number(part)
    if (value > 255) throw new PrefixError(input, `IPv4 part "${part}" is larger than 255`)
    bytes[index] = value
  })
  return bytes
}

/** Groups of one side of "::" as 16-bit values; a dotted IPv4 tail counts as two groups. */
function parseIpv6Groups (side: string, input: string, mayEndInIpv4: boolean): number[] {
  if (side === '') return []
  const parts = side.split(':')
  const groups: number[] = []
  parts.forEach((part, index) => {
    if (part === '') throw new PrefixError(input, 'IPv6 address has an empty group (a stray ":")')
    if (part.includes('.')) {
      if (!mayEndInIpv4 || index !== parts.length - 1) throw new PrefixError(input, 'an IPv4 tail may only end an IPv6 address')
      const v4 = parseIpv4(part, input)
      groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3])
      return
    }
    if (!HEX_GROUP.test(part)) throw new PrefixError(input, `IPv6 group "${part}" must be 1 to 4 hex digits`)
    groups.push(parseInt(part, 16))
  })
  return groups
}

function parseIpv6 (text: string, input: string): Uint8Array {
  if (text.includes('%')) throw new PrefixError(input, 'IPv6 zone identifiers are not allowed')
  const halves = text.split('::')
  if (halves.length > 2) throw new PrefixError(input, 'IPv6 address has more than one "::"')
  let groups: number[]
  if (halves.length === 1) {
    groups = parseIpv6Groups(text, input, true)
    if (groups.length !== 8) throw new PrefixError(input, `IPv6 address has ${groups.length} groups, not 8`)
  } else {
    const head = parseIpv6Groups(halves[0], input, false)
    const tail = parseIpv6Groups(halves[1], input, true)
    const missing = 8 - head.length - tail.length
    if (missing < 1) throw new PrefixError(input, 'IPv6 address has "::" but already 8 groups')
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail]
  }
  const bytes = new Uint8Array(16)
  groups.forEach((group, index) => { bytes[2 * index] = group >> 8; bytes[2 * index + 1] = group & 0xff })
  return bytes
}

/** An address without a length, e.g. "10.0.0.1" or "2001:db8::1". */
export function parseAddress (text: string, input: string = text): ParsedAddress {
  if (text.includes(':')) return { family: 6, bytes: parseIpv6(text, input) }
  if (text.includes('.')) return { family: 4, bytes: parseIpv4(text, input) }
  throw new PrefixError(input, `"${text}" is neither an IPv4 nor an IPv6 address`)
}

/** RFC 5952 §4 text for 16 bytes; dotted decimal for 4. */
export function formatAddress (bytes: Uint8Array): string {
  if (bytes.byteLength === 4) return Array.from(bytes).join('.')
  if (bytes.byteLength !== 16) throw new RangeError(`an address has 4 or 16 bytes, not ${bytes.byteLength}`)
  const groups = Array.from({ length: 8 }, (_, index) => (bytes[2 * index] << 8) | bytes[2 * index + 1])
  let bestStart = -1
  let bestLength = 1
  for (let start = 0; start < 8; start++) {
    let end = start
    while (end < 8 && groups[end] === 0) end++
    if (end - start > bestLength) { bestStart = start; bestLength = end - start }
    start = end
  }
  const hex = groups.map((group) => group.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

function hostBitsZero (bytes: Uint8Array, length: number): boolean {
  for (let bit = length; bit < bytes.byteLength * 8; bit++) {
    if ((bytes[bit >> 3] & (0x80 >> (bit & 7))) !== 0) return false
  }
  return true
}

function maskedCopy (bytes: Uint8Array, length: number): Uint8Array {
  const copy = bytes.slice()
  for (let bit = length; bit < copy.byteLength * 8; bit++) copy[bit >> 3] &= ~(0x80 >> (bit & 7))
  return copy
}

/** Parse "address/length" strictly. Throws PrefixError naming the problem. */
export function parsePrefix (text: string): ParsedPrefix {
  if (typeof text !== 'string') throw new PrefixError(String(text), 'must be a string')
  if (text.length > MAX_PREFIX_TEXT_LENGTH) throw new PrefixError(text, `longer than ${MAX_PREFIX_TEXT_LENGTH} characters`)
  const slash = text.indexOf('/')
  if (slash < 0) throw new PrefixError(text, 'missing "/length"')
  if (text.indexOf('/', slash + 1) >= 0) throw new PrefixError(text, 'more than one "/"')
  const addressText = text.slice(0, slash)
  const lengthText = text.slice(slash + 1)
  const { family, bytes } = parseAddress(addressText, text)
  const maxLength = family === 4 ? 32 : 128
  if (!PREFIX_LENGTH.test(lengthText)) throw new PrefixError(text, `length "${lengthText}" must be a decimal number without leading zeros`)
  const length = Number(lengthText)
  if (length > maxLength) throw new PrefixError(text, `length ${length} is longer than ${maxLength} for IPv${family}`)
  if (!hostBitsZero(bytes, length)) {
    throw new PrefixError(text, `host bits are set (the network is ${formatAddress(maskedCopy(bytes, length))}/${length})`)
  }
  const address = formatAddress(bytes)
  return { family, address, length, text: `${address}/${length}` }
}

/** Is `inner` (a prefix) wholly inside `outer`? False for mixed families and for unparseable text. */
export function prefixWithin (inner: string, outer: string): boolean {
  let a: ParsedPrefix
  let b: ParsedPrefix
  try { a = parsePrefix(inner); b = parsePrefix(outer) } catch { return false }
  if (a.family !== b.family || a.length < b.length) return false
  const innerBytes = parseAddress(a.address).bytes
  const outerBytes = parseAddress(b.address).bytes
  return formatAddress(maskedCopy(innerBytes, b.length)) === formatAddress(outerBytes)
}
