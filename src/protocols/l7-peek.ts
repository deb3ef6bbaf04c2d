// The name a connection asks for, read from its first bytes, so one L4 proxy port can serve many
// services (form-rplb's HTTP Host / TLS SNI routing): the server_name of a TLS ClientHello
// (RFC 8446 §4.1.2, RFC 6066 §3) or the Host header of an HTTP/1.x request (RFC 9112 §3.2).
// Bounded and defensive: anything malformed is 'unknown', never an exception; too few bytes yet is
// 'incomplete' (the caller reads more, up to MAX_PEEK_BYTES).

export const MAX_PEEK_BYTES = 8 * 1024

export type PeekResult =
  | { kind: 'tls', serverName: string }
  | { kind: 'http', host: string }
  | { kind: 'incomplete' }
  | { kind: 'unknown' }

const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/
const HTTP_METHOD = /^[A-Z]{3,10} /

function hostName (text: string): string | undefined {
  const name = text.toLowerCase().replace(/\.$/, '')
  return name.length <= 253 && HOST_NAME.test(name) ? name : undefined
}

/** What the first bytes of a connection ask for. */
export function peekRoutingName (bytes: Uint8Array): PeekResult {
  if (bytes.length === 0) return { kind: 'incomplete' }
  if (bytes[0] === 0x16) return peekTls(bytes)
  return peekHttp(bytes)
}

function peekTls (bytes: Uint8Array): PeekResult {
  if (bytes.length < 5) return { kind: 'incomplete' }
  const recordLength = (bytes[3]! << 8) | bytes[4]!
  if (bytes[1] !== 0x03 || recordLength < 4) return { kind: 'unknown' }
  if (bytes.length < 5 + recordLength) return 5 + recordLength > MAX_PEEK_BYTES ? { kind: 'unknown' } : { kind: 'incomplete' }
  const hello = bytes.subarray(5, 5 + recordLength)
  if (hello[0] !== 0x01) return { kind: 'unknown' }
  const name = serverName(hello)
  return name === undefined ? { kind: 'unknown' } : { kind: 'tls', serverName: name }
}

/** server_name from a ClientHello handshake message; undefined when absent or malformed. */
function serverName (hello: Uint8Array): string | undefined {
  let at = 4 + 2 + 32 // handshake header, legacy_version, random
  const skip = (lengthBytes: 1 | 2): boolean => {
    if (at + lengthBytes > hello.length) return false
    const length = lengthBytes === 1 ? hello[at]! : (hello[at]! << 8) | hello[at + 1]!
    at += lengthBytes + length
    return at <= hello.length
  }
  if (!skip(1) || !skip(2) || !skip(1)) return undefined // session id, cipher suites, compression
  if (at + 2 > hello.length) return undefined
  const end = Math.min(hello.length, at + 2 + ((hello[at]! << 8) | hello[at + 1]!))
  at += 2
  for (let extensions = 0; at + 4 <= end && extensions < 64; extensions++) {
    const type = (hello[at]! << 8) | hello[at + 1]!
    const length = (hello[at + 2]! << 8) | hello[at + 3]!
    const body = hello.subarray(at + 4, at + 4 + length)
    at += 4 + length
    if (at > end) return undefined
    if (type !== 0) continue
    // ServerNameList: u16 length, then (u8 name_type, u16 length, name); host_name is type 0.
    if (body.length < 5 || body[2] !== 0) return undefined
    const nameLength = (body[3]! << 8) | body[4]!
    if (5 + nameLength > body.length) return undefined
    return hostName(new TextDecoder().decode(body.subarray(5, 5 + nameLength)))
  }
  return undefined
}

function peekHttp (bytes: Uint8Array): PeekResult {
  const text = new TextDecoder('latin1').decode(bytes.subarray(0, MAX_PEEK_BYTES))
  if (!HTTP_METHOD.test(text.slice(0, 11)) && text.length >= 11) return { kind: 'unknown' }
  const headerEnd = text.indexOf('\r\n\r\n')
  const lines = (headerEnd < 0 ? text : text.slice(0, headerEnd)).split('\r\n')
  for (const line of lines.slice(1, headerEnd < 0 ? -1 : undefined)) {
    const colon = line.indexOf(':')
    if (colon <= 0 || line.slice(0, colon).toLowerCase() !== 'host') continue
    const value = line.slice(colon + 1).trim().replace(/:\d{1,5}$/, '')
    const host = hostName(value)
    return host === undefined ? { kind: 'unknown' } : { kind: 'http', host }
  }
  if (headerEnd >= 0 || bytes.length >= MAX_PEEK_BYTES) return { kind: 'unknown' }
  return { kind: 'incomplete' }
}
