// The node's identity: an Ed25519 key kept at <dataDir>/node.key. The peer id is derived from it, so
// losing or silently replacing the file changes who the node is to the rest of the overlay. Writes
// are atomic (temp file, fsync, link into place, fsync the directory) so a crash never leaves a
// half-written key, and a file that cannot be read or decoded is an error, never a new identity.
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, link, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'

export const NODE_KEY_FILE = 'node.key'
/** A protobuf Ed25519 key is 68 bytes; anything much larger is not a key file. */
const MAX_KEY_FILE_BYTES = 16 * 1024

/** The key file is missing where it must exist, exists where it must not, or cannot be used. */
export class NodeKeyError extends Error {
  override name = 'NodeKeyError'
  readonly path: string
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`${path}: ${message}`, options)
    this.path = path
  }
}

export function nodeKeyPath(dataDir: string): string {
  return join(dataDir, NODE_KEY_FILE)
}

export function peerIdFromKey(key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString()
}

/** The stored key, or undefined when there is no key file yet. */
export async function loadNodeKey(dataDir: string): Promise<PrivateKey | undefined> {
  const path = nodeKeyPath(dataDir)
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined
    throw new NodeKeyError(path, `cannot read node key (${describe(err)})`, { cause: err })
  }
  return decodeKey(path, bytes)
}

/**
 * Generate a new key and store it. Refuses to replace an existing key file (that would change the
 * node's identity); the `up` command uses this to learn peer ids before it starts processes.
 */
export async function createNodeKeyFile(dataDir: string): Promise<PrivateKey> {
  const key = await generateKeyPair('Ed25519')
  await writeKeyFileExclusive(dataDir, privateKeyToProtobuf(key))
  return key
}

/** Load the node key, creating it on first run. A concurrent creator wins; its key is returned. */
export async function loadOrCreateNodeKey(dataDir: string): Promise<PrivateKey> {
  const existing = await loadNodeKey(dataDir)
  if (existing !== undefined) return existing
  try {
    return await createNodeKeyFile(dataDir)
  } catch (err) {
    if (err instanceof NodeKeyError && errorCode(err.cause) === 'EEXIST') {
      const raced = await loadNodeKey(dataDir)
      if (raced !== undefined) return raced
    }
    throw err
  }
}

function decodeKey(path: string, bytes: Uint8Array): PrivateKey {
  if (bytes.byteLength === 0) throw new NodeKeyError(path, 'node key file is empty')
  if (bytes.byteLength > MAX_KEY_FILE_BYTES) {
    throw new NodeKeyError(path, `node key file is ${bytes.byteLength} bytes, not a key`)
  }
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new NodeKeyError(path, `node key file is corrupt (${describe(err)}); ` +
      'restore it from a backup or delete it to give this node a new identity', { cause: err })
  }
}

/**
 * Write via a temp file and hard-link it into place: link fails with EEXIST instead of replacing an
 * existing key, and the final name only ever points at a complete, fsynced file.
 */
async function writeKeyFileExclusive(dataDir: string, bytes: Uint8Array): Promise<void> {
  const path = nodeKeyPath(dataDir)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const tempPath = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    const handle = await open(tempPath, 'wx', 0o600)
    try {
      await handle.chmod(0o600)
      await handle.writeFile(bytes)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await link(tempPath, path)
  } catch (err) {
    const reason = errorCode(err) === 'EEXIST' ? 'node key file already exists' : `cannot write node key (${describe(err)})`
    throw new NodeKeyError(path, reason, { cause: err })
  } finally {
    await unlink(tempPath).catch(() => undefined)
  }
  await syncDirectory(dataDir)
}

/** Make the new directory entry durable. Some platforms cannot open directories; that is not fatal. */
async function syncDirectory(dir: string): Promise<void> {
  let handle
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch (err) {
    const code = errorCode(err)
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw err
  } finally {
    await handle?.close()
  }
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
