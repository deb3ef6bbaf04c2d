// Signer and Verifier ports over Ed25519 (node:crypto, synchronous: ~20 µs to sign, ~65 µs to
// verify). Real nodes sign with their libp2p node key; a peer id embeds its Ed25519 public key, so
// any node can verify an origin it has never met. Simulated nodes derive keys from the seed and
// register them in a shared directory, so a replay signs byte-identically.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import type { Random, Signer, Verifier } from './ports.ts'

/** PKCS#8 DER header of an Ed25519 private key (RFC 8410 §7); the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const ED25519_SEED_BYTES = 32

export function ed25519KeyFromSeed (seed: Uint8Array): KeyObject {
  if (seed.byteLength !== ED25519_SEED_BYTES) throw new RangeError(`Ed25519 seed must be ${ED25519_SEED_BYTES} bytes, got ${seed.byteLength}`)
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
}

export function publicKeyRaw (privateKey: KeyObject): Uint8Array {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' })
  return new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'))
}

function publicKeyFromRaw (raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' })
}

export function createKeySigner (nodeId: string, privateKey: KeyObject): Signer {
  return { nodeId, sign: (data) => new Uint8Array(sign(null, data, privateKey)) }
}

/** A signer for a real node, from its libp2p Ed25519 node key. */
export function signerFromLibp2pKey (nodeId: string, key: PrivateKey): Signer {
  if (key.type !== 'Ed25519') throw new TypeError(`node key must be Ed25519, got ${key.type}`)
  return createKeySigner(nodeId, ed25519KeyFromSeed(key.raw.subarray(0, ED25519_SEED_BYTES)))
}

/** Signature verdicts kept for sharing (KeyDirectory's shareVerdicts) before they are dropped. */
const MAX_SHARED_VERDICTS = 200_000

function checkSignature (data: Uint8Array, key: KeyObject, signature: Uint8Array): boolean {
  try { return verify(null, data, key, signature) } catch { return false }
}

/** Most public keys cached at once; a lookup past it evicts the oldest. */
const MAX_CACHED_KEYS = 100_000

/**
 * Knows node keys: registered explicitly (simulator), or — for libp2p peer ids — read from the id
 * itself, which embeds an Ed25519 public key.
 */
export class KeyDirectory implements Verifier {
  private readonly keys = new Map<string, KeyObject | null>()
  /** Verdicts on signatures already checked, when `shareVerdicts` is on: by node id and signature. */
  private readonly verdicts = new Map<string, { key: KeyObject, data: Uint8Array, valid: boolean }>()

  /**
   * `shareVerdicts` is for the simulator, whose nodes all verify through one directory: every
   * node checks every announcement, so 1,000 nodes would check each signature 1,000 times, the same
   * pure computation with the same answer. With it on, a signature is checked once per world and
   * its verdict reused for exactly the same node id, key, bytes and signature (the bytes are
   * compared, so a valid signature replayed over other bytes is still checked, and still fails; a
   * node given a new key by a wiped restart has its old signatures checked afresh, and refused).
   */
  constructor (private readonly options: { fromPeerIds: boolean, shareVerdicts?: boolean }) {}

  register (nodeId: string, publicKey: Uint8Array): void {
    this.cache(nodeId, publicKeyFromRaw(publicKey))
  }

  has (nodeId: string): boolean { return this.lookup(nodeId) !== null }

  verify (nodeId: string, data: Uint8Array, signature: Uint8Array): boolean {
    const key = this.lookup(nodeId)
    if (key === null) return false
    if (this.options.shareVerdicts !== true) return checkSignature(data, key, signature)
    const memo = `${nodeId}\n${Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString('base64')}`
    const known = this.verdicts.get(memo)
    if (known !== undefined && known.key === key && Buffer.compare(known.data, data) === 0) return known.valid
    const valid = checkSignature(data, key, signature)
    if (this.verdicts.size >= MAX_SHARED_VERDICTS) this.verdicts.clear()
    this.verdicts.set(memo, { key, data: data.slice(), valid })
    return valid
  }

  private lookup (nodeId: string): KeyObject | null {
    const known = this.keys.get(nodeId)
    if (known !== undefined) return known
    let key: KeyObject | null = null
    if (this.options.fromPeerIds) {
      try {
        const raw = peerIdFromString(nodeId).publicKey
        if (raw?.type === 'Ed25519') key = publicKeyFromRaw(raw.raw)
      } catch { key = null }
    }
    this.cache(nodeId, key)
    return key
  }

  private cache (nodeId: string, key: KeyObject | null): void {
    if (this.keys.size >= MAX_CACHED_KEYS) {
      const oldest = this.keys.keys().next().value
      if (oldest !== undefined) this.keys.delete(oldest)
    }
    this.keys.set(nodeId, key)
  }
}

/** A deterministic key for a simulated node, registered in the world's directory. */
export function createSimSigner (nodeId: string, random: Random, directory: KeyDirectory): Signer {
  const seed = new Uint8Array(ED25519_SEED_BYTES)
  for (let i = 0; i < seed.length; i += 4) new DataView(seed.buffer).setUint32(i, random.nextUint32())
  const key = ed25519KeyFromSeed(seed)
  directory.register(nodeId, publicKeyRaw(key))
  return createKeySigner(nodeId, key)
}
