import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateNetworkKey, NetworkKeyError, parseNetworkKey, readNetworkKey, writeNetworkKeyFile } from '../../src/runtime/network-key.ts'

const HEX = 'ab'.repeat(32)
const enc = (text: string): Uint8Array => new TextEncoder().encode(text)

test('network key: a generated key is 95 bytes in the swarm key format and parses to itself', () => {
  const key = generateNetworkKey()
  assert.is(key.length, 95)
  assert.equal(parseNetworkKey(key, 'k'), key)
  assert.is.not(Buffer.from(generateNetworkKey()).toString(), Buffer.from(key).toString(), 'two keys differ')
})

test('network key: CRLF, a trailing newline and upper-case hex are normalised', () => {
  const parsed = parseNetworkKey(enc(`/key/swarm/psk/1.0.0/\r\n/base16/\r\n${HEX.toUpperCase()}\r\n`), 'k')
  assert.is(new TextDecoder().decode(parsed), `/key/swarm/psk/1.0.0/\n/base16/\n${HEX}`)
})

const bad: Array<[string, string, RegExp]> = [
  ['empty', '', /first line must be/],
  ['wrong header', `/key/swarm/psk/2.0.0/\n/base16/\n${HEX}`, /first line must be/],
  ['wrong encoding', `/key/swarm/psk/1.0.0/\n/base64/\n${HEX}`, /base16/],
  ['short key', `/key/swarm/psk/1.0.0/\n/base16/\n${HEX.slice(2)}`, /64 hex digits/],
  ['not hex', `/key/swarm/psk/1.0.0/\n/base16/\n${'zz'.repeat(32)}`, /64 hex digits/],
  ['extra content', `/key/swarm/psk/1.0.0/\n/base16/\n${HEX}\nmore`, /extra content/],
  ['too large', 'x'.repeat(1000), /is 1000 bytes/]
]
for (const [name, text, error] of bad) {
  test(`network key: ${name} is refused, naming the file`, () => {
    try { parseNetworkKey(enc(text), '/etc/net.key'); assert.unreachable('accepted') } catch (caught) {
      assert.instance(caught, NetworkKeyError)
      assert.match((caught as Error).message, /^\/etc\/net\.key: /)
      assert.match((caught as Error).message, error)
    }
  })
}

test('network key: written 0600, never overwritten, read back; a missing file is a named error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-netkey-'))
  try {
    const path = join(dir, 'network.key')
    const key = await writeNetworkKeyFile(path)
    assert.is(statSync(path).mode & 0o777, 0o600)
    assert.equal(await readNetworkKey(path), key)
    try { await writeNetworkKeyFile(path); assert.unreachable('overwrote') } catch (caught) { assert.match((caught as Error).message, /already exists/) }
    assert.equal(await readNetworkKey(path), key, 'the key is unchanged')
    try { await readNetworkKey(join(dir, 'missing.key')); assert.unreachable('read a missing file') } catch (caught) {
      assert.instance(caught, NetworkKeyError)
      assert.match((caught as Error).message, /ENOENT/)
    }
    writeFileSync(join(dir, 'bad.key'), 'nope')
    try { await readNetworkKey(join(dir, 'bad.key')); assert.unreachable('read a bad file') } catch (caught) { assert.instance(caught, NetworkKeyError) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
