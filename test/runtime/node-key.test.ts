import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  NodeKeyError, createNodeKeyFile, loadNodeKey, loadOrCreateNodeKey, nodeKeyPath, peerIdFromKey
} from '../../src/runtime/node-key.ts'

async function withDataDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'form-anycast-key-'))
  try {
    await run(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function expectNodeKeyError(run: () => Promise<unknown>, path: string, pattern: RegExp): Promise<void> {
  try {
    await run()
  } catch (err) {
    assert.instance(err, NodeKeyError)
    assert.is((err as NodeKeyError).name, 'NodeKeyError')
    assert.is((err as NodeKeyError).path, path)
    assert.ok((err as Error).message.includes(path), `message names the file: ${(err as Error).message}`)
    assert.match((err as Error).message, pattern)
    return
  }
  assert.unreachable('expected a NodeKeyError')
}

test('node-key: first run creates an Ed25519 key with mode 0600 and no temp files left', () => withDataDir(async (dir) => {
  const dataDir = join(dir, 'nested', 'data')
  const key = await loadOrCreateNodeKey(dataDir)
  assert.is(key.type, 'Ed25519')
  const info = await stat(nodeKeyPath(dataDir))
  assert.is(info.mode & 0o777, 0o600)
  assert.equal(await readdir(dataDir), ['node.key'])
  assert.match(peerIdFromKey(key), /^12D3KooW/)
}))

test('node-key: restart loads the same key, so the peer id is stable', () => withDataDir(async (dir) => {
  const first = await loadOrCreateNodeKey(dir)
  const second = await loadOrCreateNodeKey(dir)
  assert.is(peerIdFromKey(second), peerIdFromKey(first))
  assert.ok(second.equals(first))
  const loaded = await loadNodeKey(dir)
  assert.ok(loaded !== undefined && loaded.equals(first))
}))

test('node-key: two nodes in different directories get different peer ids', () => withDataDir(async (dir) => {
  const a = await loadOrCreateNodeKey(join(dir, 'a'))
  const b = await loadOrCreateNodeKey(join(dir, 'b'))
  assert.is.not(peerIdFromKey(a), peerIdFromKey(b))
}))

test('node-key: loadNodeKey is undefined when there is no key yet', () => withDataDir(async (dir) => {
  assert.is(await loadNodeKey(dir), undefined)
}))

test('node-key: createNodeKeyFile pre-generates a key that a later start uses', () => withDataDir(async (dir) => {
  const created = await createNodeKeyFile(dir)
  const started = await loadOrCreateNodeKey(dir)
  assert.is(peerIdFromKey(started), peerIdFromKey(created))
}))

test('node-key: createNodeKeyFile refuses to replace an existing identity', () => withDataDir(async (dir) => {
  const original = await createNodeKeyFile(dir)
  const before = await readFile(nodeKeyPath(dir))
  await expectNodeKeyError(() => createNodeKeyFile(dir), nodeKeyPath(dir), /already exists/)
  assert.equal(await readFile(nodeKeyPath(dir)), before)
  assert.is(peerIdFromKey(await loadOrCreateNodeKey(dir)), peerIdFromKey(original))
  assert.equal(await readdir(dir), ['node.key'])
}))

test('node-key: concurrent first starts agree on one identity', () => withDataDir(async (dir) => {
  const keys = await Promise.all([loadOrCreateNodeKey(dir), loadOrCreateNodeKey(dir), loadOrCreateNodeKey(dir)])
  const ids = new Set(keys.map(peerIdFromKey))
  assert.is(ids.size, 1)
  assert.is(peerIdFromKey((await loadNodeKey(dir))!), [...ids][0])
}))

const corruptFiles: Array<[string, Uint8Array, RegExp]> = [
  ['empty', new Uint8Array(0), /empty/],
  ['garbage', new TextEncoder().encode('this is not a protobuf key at all'), /corrupt/],
  ['oversized', new Uint8Array(20_000).fill(7), /not a key/]
]

for (const [label, bytes, pattern] of corruptFiles) {
  test(`node-key: ${label} key file is an error naming the file, never a new identity`, () => withDataDir(async (dir) => {
    await writeFile(nodeKeyPath(dir), bytes, { mode: 0o600 })
    await expectNodeKeyError(() => loadOrCreateNodeKey(dir), nodeKeyPath(dir), pattern)
    assert.equal(new Uint8Array(await readFile(nodeKeyPath(dir))), bytes, 'the file is left untouched')
  }))
}

test('node-key: truncated key file (crash mid-copy by hand) is an error naming the file', () => withDataDir(async (dir) => {
  await createNodeKeyFile(dir)
  const whole = await readFile(nodeKeyPath(dir))
  await writeFile(nodeKeyPath(dir), whole.subarray(0, 30))
  await expectNodeKeyError(() => loadOrCreateNodeKey(dir), nodeKeyPath(dir), /corrupt/)
}))

test('node-key: unreadable key path (a directory) is an error naming the file', () => withDataDir(async (dir) => {
  await mkdir(nodeKeyPath(dir))
  await expectNodeKeyError(() => loadOrCreateNodeKey(dir), nodeKeyPath(dir), /cannot read/)
}))

test.run()
