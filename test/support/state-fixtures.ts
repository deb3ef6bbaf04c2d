// Shared fixtures for the replicated-state tests: deterministic simulated signers (Ed25519 keys
// from a seed, registered in one KeyDirectory) and a compact way to write signed ops.
import { createRandom } from '../../src/runtime/random.ts'
import { createSimSigner, KeyDirectory } from '../../src/runtime/signing.ts'
import type { Signer } from '../../src/runtime/ports.ts'
import { signStateOp, type Collection, type JsonObject, type SignedStateOp, type StateOp } from '../../src/protocols/state-crdt.ts'

export interface StateSigners {
  directory: KeyDirectory
  signer(nodeId: string): Signer
}

/** Signers for any node id, derived from `seed` and the id, so every run signs the same bytes. */
export function createStateSigners (seed: number): StateSigners {
  const directory = new KeyDirectory({ fromPeerIds: false })
  const random = createRandom(seed)
  const signers = new Map<string, Signer>()
  return {
    directory,
    signer: (nodeId) => {
      let signer = signers.get(nodeId)
      if (signer === undefined) {
        signer = createSimSigner(nodeId, random.fork(nodeId), directory)
        signers.set(nodeId, signer)
      }
      return signer
    }
  }
}

export interface OpSpec {
  collection?: Collection
  key: string
  author: string
  wallMs: number
  counter?: number
  /** Absent: a tombstone. */
  value?: JsonObject
}

export function stateOp (spec: OpSpec): StateOp {
  const op: StateOp = {
    collection: spec.collection ?? 'services',
    key: spec.key,
    hlc: { wallMs: spec.wallMs, counter: spec.counter ?? 0, node: spec.author },
    author: spec.author,
    tombstone: spec.value === undefined
  }
  if (spec.value !== undefined) op.value = spec.value
  return op
}

export function signedOp (signers: StateSigners, spec: OpSpec): SignedStateOp {
  return signStateOp(stateOp(spec), signers.signer(spec.author))
}

/** The crash test's writer (test/support/state-crash-child.ts) and the keys it writes. */
export const CRASH_SIGNER_SEED = 4242
export const CRASH_WRITER = 'writer'
export function crashKey (round: number, index: number): string { return `crash/${round}/${index}` }
