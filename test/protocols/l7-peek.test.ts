import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type AddressInfo } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { MAX_PEEK_BYTES, peekRoutingName } from '../../src/protocols/l7-peek.ts'

/** A real ClientHello, as node's TLS client sends it, captured by a plain TCP server on loopback. */
async function clientHello (servername: string | undefined): Promise<Uint8Array> {
  let resolveBytes: (bytes: Uint8Array) => void = () => undefined
  const captured = new Promise<Uint8Array>((resolve) => { resolveBytes = resolve })
  const server = createServer((socket) => { socket.once('data', (chunk) => { resolveBytes(new Uint8Array(chunk)); socket.destroy() }) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const client = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...(servername === undefined ? {} : { servername }), rejectUnauthorized: false })
  client.on('error', () => undefined)
  try { return await captured } finally { client.destroy(); server.close() }
}

const encode = (text: string): Uint8Array => new TextEncoder().encode(text)

test('peek: TLS ClientHello server_name from node\'s own TLS client; every shorter prefix is incomplete', async () => {
  const hello = await clientHello('Web.Anycast.Form')
  assert.equal(peekRoutingName(hello), { kind: 'tls', serverName: 'web.anycast.form' })
  for (const length of [1, 4, 5, 40, hello.length - 1]) assert.equal(peekRoutingName(hello.subarray(0, length)), { kind: 'incomplete' }, `${length} bytes`)
})

test('peek: a ClientHello without server_name (an IP address) is unknown', async () => {
  assert.equal(peekRoutingName(await clientHello(undefined)), { kind: 'unknown' })
})

const cases: Array<[string, Uint8Array, ReturnType<typeof peekRoutingName>]> = [
  ['nothing yet', new Uint8Array(0), { kind: 'incomplete' }],
  ['HTTP Host', encode('GET / HTTP/1.1\r\nHost: api.anycast.form\r\nAccept: */*\r\n\r\n'), { kind: 'http', host: 'api.anycast.form' }],
  ['HTTP Host with port, any case', encode('POST /x HTTP/1.1\r\nhOsT: API.anycast.form:8080\r\n\r\n'), { kind: 'http', host: 'api.anycast.form' }],
  ['HTTP headers not finished, no Host yet', encode('GET / HTTP/1.1\r\nAccept: */*\r\n'), { kind: 'incomplete' }],
  ['HTTP without Host', encode('GET / HTTP/1.0\r\nAccept: */*\r\n\r\n'), { kind: 'unknown' }],
  ['HTTP Host that is no host name', encode('GET / HTTP/1.1\r\nHost: evil/../name\r\n\r\n'), { kind: 'unknown' }],
  ['not HTTP, not TLS', encode('SSH-2.0-OpenSSH_9.2\r\n'), { kind: 'unknown' }],
  ['TLS record of another version', new Uint8Array([0x16, 0x02, 0x00, 0x00, 0x10]), { kind: 'unknown' }],
  ['TLS record larger than the peek bound', new Uint8Array([0x16, 0x03, 0x01, 0xff, 0xff]), { kind: 'unknown' }],
  ['TLS record that is not a ClientHello', new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]), { kind: 'unknown' }],
  ['HTTP headers beyond the bound', encode(`GET / HTTP/1.1\r\nX: ${'a'.repeat(MAX_PEEK_BYTES)}`), { kind: 'unknown' }]
]

for (const [name, bytes, want] of cases) {
  test(`peek: ${name}`, () => { assert.equal(peekRoutingName(bytes), want) })
}

test('peek: truncated or corrupted ClientHellos never throw', async () => {
  const hello = await clientHello('web.anycast.form')
  for (let cut = 5; cut < hello.length; cut += 7) {
    const broken = hello.slice(0, cut)
    broken[3] = (cut - 5) >> 8; broken[4] = (cut - 5) & 0xff
    const result = peekRoutingName(broken)
    assert.ok(result.kind === 'unknown' || result.kind === 'tls', `cut at ${cut}: ${result.kind}`)
  }
})

test.run()
