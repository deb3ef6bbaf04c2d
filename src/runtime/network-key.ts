// The network's membership credential: a pre-shared key (libp2p private networks, @libp2p/pnet).
// Every connection is wrapped in XSalsa20 under this key before noise even starts, so a process
// without it cannot complete a handshake with any member: it cannot open a session, publish, or
// read gossip. The file is the go-ipfs/libp2p swarm key format, 95 bytes:
//
//   /key/swarm/psk/1.0.0/
//   /base16/
//   <64 hex digits: 32 random bytes>
//
// Operators copy one file to every node of a network (`form-anycast network-key FILE` makes one;
// `form-anycast up` makes one per demo network). Losing it locks a node out; leaking it lets anyone
// join: treat it as a secret (written 0600).
import { randomBytes } from 'node:crypto'
import { open, readFile } from 'node:fs/promises'

const HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n'
const KEY_HEX = /^[0-9a-f]{64}$/i
/** A key file is 95 bytes; tolerate a trailing newline and CRLF, refuse anything much larger. */
const MAX_FILE_BYTES = 256

export class NetworkKeyError extends Error {
  override name = 'NetworkKeyError'
  constructor (readonly path: string, reason: string, options?: { cause?: unknown }) {
    super(`${path}: ${reason}`, options)
  }
}

/** A fresh key in the swarm key format. */
export function generateNetworkKey (): Uint8Array {
  return new TextEncoder().encode(HEADER + randomBytes(32).toString('hex'))
}

/** Check and normalise a key file's bytes (the format @libp2p/pnet expects, no trailing newline). */
export function parseNetworkKey (bytes: Uint8Array, path: string): Uint8Array {
  if (bytes.length > MAX_FILE_BYTES) throw new NetworkKeyError(path, `is ${bytes.length} bytes; a network key file is 95`)
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes).replace(/\r\n/g, '\n')
  const lines = text.split('\n')
  if (lines[0] !== '/key/swarm/psk/1.0.0/') throw new NetworkKeyError(path, 'is not a network key: the first line must be /key/swarm/psk/1.0.0/')
  if (lines[1] !== '/base16/') throw new NetworkKeyError(path, 'must use the /base16/ encoding on its second line')
  const hex = lines[2] ?? ''
  if (!KEY_HEX.test(hex)) throw new NetworkKeyError(path, 'third line must be 64 hex digits (32 random bytes)')
  if (lines.slice(3).some((line) => line.trim() !== '')) throw new NetworkKeyError(path, 'has extra content after the key')
  return new TextEncoder().encode(HEADER + hex.toLowerCase())
}

export async function readNetworkKey (path: string): Promise<Uint8Array> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (error) {
    throw new NetworkKeyError(path, `cannot read the network key (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error })
  }
  return parseNetworkKey(bytes, path)
}

/** Write a new key to `path` (mode 0600); refuses to replace an existing file. */
export async function writeNetworkKeyFile (path: string, key: Uint8Array = generateNetworkKey()): Promise<Uint8Array> {
  let handle
  try {
    handle = await open(path, 'wx', 0o600)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new NetworkKeyError(path, code === 'EEXIST' ? 'already exists; a network key is never overwritten' : `cannot create (${code ?? (error as Error).message})`, { cause: error })
  }
  try {
    await handle.writeFile(key)
    await handle.sync()
  } finally {
    await handle.close()
  }
  return key
}
