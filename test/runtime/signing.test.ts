import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createRandom } from '../../src/runtime/random.ts'
import { createSimSigner, KeyDirectory, signerFromLibp2pKey } from '../../src/runtime/signing.ts'

const data = new TextEncoder().encode('announce 10.42.255.1/32 seq 7')

test('signing: a libp2p node key signs; any node verifies from the peer id alone', async () => {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  const signature = signerFromLibp2pKey(peerId, key).sign(data)
  const directory = new KeyDirectory({ fromPeerIds: true })
  assert.ok(directory.verify(peerId, data, signature))
  const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  assert.not.ok(directory.verify(other, data, signature), 'signature does not verify as another origin')
  const tampered = data.slice(); tampered[0] ^= 1
  assert.not.ok(directory.verify(peerId, tampered, signature), 'tampered data fails')
  assert.not.ok(directory.verify('not-a-peer-id', data, signature), 'unknown key fails')
  assert.not.ok(directory.verify(peerId, data, new Uint8Array(3)), 'short signature fails without throwing')
})

test('signing: simulated keys are deterministic by seed and unknown ids are refused', () => {
  const sign = (seed: number): Uint8Array => createSimSigner('n1', createRandom(seed), new KeyDirectory({ fromPeerIds: false })).sign(data)
  assert.equal(sign(5), sign(5))
  assert.not.equal(sign(5), sign(6))
  const directory = new KeyDirectory({ fromPeerIds: false })
  const signer = createSimSigner('n1', createRandom(5), directory)
  assert.ok(directory.verify('n1', data, signer.sign(data)))
  assert.not.ok(directory.verify('n2', data, signer.sign(data)))
})

test('signing: shared verdicts (the simulator) answer exactly as fresh checks do, replays over other bytes included', () => {
  const shared = new KeyDirectory({ fromPeerIds: false, shareVerdicts: true })
  const fresh = new KeyDirectory({ fromPeerIds: false })
  const signer = createSimSigner('n1', createRandom(5), shared)
  createSimSigner('n1', createRandom(5), fresh)
  const other = new TextEncoder().encode('another announcement')
  const signature = signer.sign(data)
  const forged = signature.slice()
  forged[0] = forged[0]! ^ 1
  const cases: Array<[string, Uint8Array, Uint8Array]> = [
    ['n1', data, signature], ['n1', data, signature], ['n1', other, signature], ['n1', data, signature],
    ['n2', data, signature], ['n1', data, forged], ['n1', data, forged], ['n1', other, signer.sign(other)]
  ]
  for (const [index, [nodeId, bytes, sig]] of cases.entries()) {
    assert.is(shared.verify(nodeId, bytes, sig), fresh.verify(nodeId, bytes, sig), `case ${index}`)
  }
  assert.ok(shared.verify('n1', data, signature))
  assert.not.ok(shared.verify('n1', other, signature), 'a valid signature over other bytes still fails')
  // The bytes are copied: a caller reusing its buffer cannot turn a cached verdict into a lie.
  const buffer = data.slice()
  assert.ok(shared.verify('n1', buffer, signature))
  buffer[0] = buffer[0]! ^ 1
  assert.not.ok(shared.verify('n1', buffer, signature))
  // A node that comes back with a new key (a wiped restart): its old signatures no longer verify.
  createSimSigner('n1', createRandom(6), shared)
  assert.not.ok(shared.verify('n1', data, signature), 'a verdict on the old key is not reused')
})

test.run()
