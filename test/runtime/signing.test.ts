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

test.run()
