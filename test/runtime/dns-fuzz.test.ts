// Fuzzing the DNS server over real sockets: random bytes and mutated valid queries over UDP and TCP,
// random byte streams as TCP framing, and a compression loop. After each fuzz packet a valid
// "sentinel" query follows on the same socket; since the server handles a socket's messages in
// order, the sentinel's answer proves the fuzz packet was handled (answered or dropped) without a
// crash or a hang, and any reply in between belongs to the fuzz packet.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect, type Socket } from 'node:net'
import dnsPacket, { type DecodedPacket, type PacketOpt } from 'dns-packet'
import { createDnsServer } from '../../src/runtime/dns-server.ts'
import { aRecord, txtRecord } from '../../src/protocols/dns-codec.ts'
import type { ZoneView } from '../../src/protocols/dns-answer.ts'
import { createMemoryMetrics, type MemoryMetrics } from '../../src/runtime/metrics.ts'
import { createSilentLogger } from '../../src/runtime/logger.ts'

const FUZZ_COUNT = 2000
const WAIT_MS = 2000

const zone: ZoneView = {
  apex: 'anycast.form',
  soa: { mname: 'ns1.anycast.form', rname: 'hostmaster.anycast.form', serial: 1, refreshS: 3600, retryS: 600, expireS: 86_400, minimumS: 10 },
  soaTtlS: 300,
  nameservers: ['ns1.anycast.form'],
  nameserverTtlS: 3600,
  resolve (name, qtype, client) {
    if (name.startsWith('sentinel-')) return { records: [txtRecord(name)], ttlS: 1, scopePrefix: 0 }
    if (name === 'www.anycast.form' && (qtype === 1 || qtype === 255)) {
      return { records: [aRecord(client.ecs?.address.startsWith('81.') === true ? '192.0.2.1' : '198.51.100.1'), aRecord('203.0.113.1')], ttlS: 30 }
    }
    if (name === 'many.anycast.form') return { records: Array.from({ length: 80 }, (_, index) => aRecord(`203.0.113.${index + 1}`)), ttlS: 30 }
    return 'nxdomain'
  }
}

// ---------------------------------------------------------------------------------------------
// Inputs

const ecs = (ip: string, sourcePrefixLength: number, family = 1): PacketOpt => ({ code: 8, family, sourcePrefixLength, scopePrefixLength: 0, ip })
const validQuery = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  name: fc.constantFrom('www.anycast.form', 'many.anycast.form', 'nope.anycast.form', 'anycast.form', 'example.com', 'WwW.AnyCast.form'),
  type: fc.constantFrom('A', 'AAAA', 'TXT', 'SOA', 'NS', 'ANY', 'AXFR'),
  size: fc.integer({ min: 0, max: 4096 }),
  options: fc.constantFrom<PacketOpt[][]>([], [ecs('81.2.69.0', 24)], [ecs('2001:db8::', 32, 2)], [ecs('10.0.0.0', 8), { code: 12, length: 8 }]),
  edns: fc.boolean()
}).map(({ id, name, type, size, options, edns }) => Uint8Array.from(dnsPacket.encode({
  type: 'query',
  id,
  flags: dnsPacket.RECURSION_DESIRED,
  questions: [{ name, type: type as 'A', class: 'IN' }],
  additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: size, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options }] : []
})))

/** Flip a bit, set a byte, cut, insert a byte, insert a compression pointer, or change a header count. */
const mutatedQuery = fc.tuple(validQuery, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 5 }), fc.nat(255)), { minLength: 1, maxLength: 5 }))
  .map(([valid, edits]) => {
    let bytes = Array.from(valid)
    for (const [position, kind, value] of edits) {
      const at = position % (bytes.length + 1)
      if (kind === 0) bytes[at] = (bytes[at] ?? 0) ^ (1 << (value % 8))
      else if (kind === 1) bytes[at] = value
      else if (kind === 2) bytes = bytes.slice(0, at)
      else if (kind === 3) bytes.splice(at, 0, value)
      else if (kind === 4) bytes.splice(at, 0, 0xc0 | (value & 0x3f), value)
      else bytes[4 + 2 * (value % 4) + 1] = value % 4 // qd/an/ns/ar count
    }
    return Uint8Array.from(bytes)
  })

/** Random lengths without fast-check's bias to small sizes (most would be under 12 bytes). */
const bytesOfLength = (min: number, max: number): fc.Arbitrary<Uint8Array> =>
  fc.noBias(fc.integer({ min, max })).chain((length) => fc.noBias(fc.uint8Array({ minLength: length, maxLength: length })))
/** Random tail behind a plausible query header (QR=0, opcode QUERY, small counts), so decoding goes deep. */
const queryShaped = fc.tuple(fc.noBias(fc.integer({ min: 0, max: 0xffff })), fc.noBias(fc.integer({ min: 0, max: 0x7ff })), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }), bytesOfLength(0, 300))
  .map(([id, flags, counts, tail]) => Uint8Array.from([id >> 8, id & 0xff, flags >> 8, flags & 0xff, ...counts.flatMap((count) => [0, count]), ...tail]))
const randomBytes = fc.oneof(
  { weight: 4, arbitrary: bytesOfLength(0, 600) },
  { weight: 5, arbitrary: queryShaped },
  { weight: 1, arbitrary: bytesOfLength(4000, 9000) }
)

const sample = <T>(arbitrary: fc.Arbitrary<T>, seed: number): T[] => fc.sample(arbitrary, { numRuns: FUZZ_COUNT, seed })

// ---------------------------------------------------------------------------------------------
// Clients

const sentinel = (index: number): Uint8Array => dnsPacket.encode({ type: 'query', id: index & 0xffff, questions: [{ name: `sentinel-${index}.anycast.form`, type: 'TXT', class: 'IN' }] })
const questionName = (packet: DecodedPacket): string | undefined => packet.questions?.[0]?.name

interface Tally { replies: number, sentinels: number }

/** Checks one reply to a fuzz packet: a response to that packet's id that dns-packet decodes. */
function checkFuzzReply (reply: Buffer, fuzz: Uint8Array, label: string): void {
  const packet = dnsPacket.decode(reply)
  assert.is(packet.flag_qr, true, `${label}: a response`)
  assert.is(packet.id, (fuzz[0] << 8) | fuzz[1], `${label}: the fuzz packet's id`)
}

async function fuzzUdp (port: number, inputs: Uint8Array[], label: string): Promise<Tally> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => { socket.bind(0, '127.0.0.1', resolve) })
  const tally: Tally = { replies: 0, sentinels: 0 }
  try {
    for (let index = 0; index < inputs.length; index++) {
      const fuzz = inputs[index]
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { socket.off('message', onMessage); reject(new Error(`${label} #${index}: no sentinel reply within ${WAIT_MS} ms (input ${Buffer.from(fuzz).toString('hex').slice(0, 200)})`)) }, WAIT_MS)
        const onMessage = (reply: Buffer): void => {
          if (reply.length >= 12 && questionName(safeDecode(reply)) === `sentinel-${index}.anycast.form`) {
            clearTimeout(timer); socket.off('message', onMessage); tally.sentinels++; resolve(); return
          }
          tally.replies++
          try { checkFuzzReply(reply, fuzz, `${label} #${index}`) } catch (error) { clearTimeout(timer); socket.off('message', onMessage); reject(error) }
        }
        socket.on('message', onMessage)
        socket.send(fuzz, port, '127.0.0.1')
        socket.send(sentinel(index), port, '127.0.0.1')
      })
    }
  } finally { socket.close() }
  return tally
}

function safeDecode (reply: Buffer): DecodedPacket {
  try { return dnsPacket.decode(reply) } catch { return { questions: [] } as unknown as DecodedPacket }
}

const frame = (bytes: Uint8Array): Buffer => Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes])

async function fuzzTcp (port: number, inputs: Uint8Array[], label: string): Promise<Tally> {
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const tally: Tally = { replies: 0, sentinels: 0 }
  let buffered = Buffer.alloc(0)
  const replies: Buffer[] = []
  let wake: (() => void) | undefined
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk])
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      replies.push(buffered.subarray(2, 2 + buffered.readUInt16BE(0)))
      buffered = buffered.subarray(2 + buffered.readUInt16BE(0))
    }
    wake?.()
  })
  try {
    for (let index = 0; index < inputs.length; index++) {
      const fuzz = inputs[index]
      socket.write(Buffer.concat([frame(fuzz), frame(sentinel(index))]))
      const deadline = Date.now() + WAIT_MS
      for (;;) {
        const reply = replies.shift()
        if (reply === undefined) {
          if (Date.now() > deadline || socket.destroyed) throw new Error(`${label} #${index}: no sentinel reply (input ${Buffer.from(fuzz).toString('hex').slice(0, 200)})`)
          await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 50) })
          continue
        }
        if (questionName(safeDecode(reply)) === `sentinel-${index}.anycast.form`) { tally.sentinels++; break }
        tally.replies++
        checkFuzzReply(reply, fuzz, `${label} #${index}`)
      }
    }
  } finally { socket.destroy() }
  return tally
}

// ---------------------------------------------------------------------------------------------

interface Running { port: number, metrics: MemoryMetrics, stop: () => Promise<void> }

async function startServer (): Promise<Running> {
  const metrics = createMemoryMetrics()
  const server = createDnsServer({ zone, logger: createSilentLogger(), metrics, port: 0, tcpIdleMs: 500 })
  await server.start()
  return { port: server.port ?? 0, metrics, stop: async () => { await server.stop() } }
}

function assertNoInternalErrors (metrics: MemoryMetrics): void {
  const errors = Object.entries(metrics.snapshot()).filter(([key]) => key.startsWith('dns_errors_total'))
  assert.equal(errors, [], 'no internal error on any input')
}

async function assertStillAnswers (port: number): Promise<void> {
  const socket = createSocket('udp4')
  try {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('no answer after fuzzing')) }, WAIT_MS)
      socket.once('message', (message) => { clearTimeout(timer); resolve(message) })
      socket.send(dnsPacket.encode({
        type: 'query', id: 4711, questions: [{ name: 'www.anycast.form', type: 'A', class: 'IN' }],
        additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [ecs('81.2.69.0', 24)] }]
      }), port, '127.0.0.1')
    })
    const packet = dnsPacket.decode(reply)
    assert.is(packet.id, 4711)
    assert.equal((packet.answers ?? []).map((answer) => (answer as { data: unknown }).data), ['192.0.2.1', '203.0.113.1'])
  } finally { socket.close() }
}

for (const transport of ['udp', 'tcp'] as const) {
  const run = transport === 'udp' ? fuzzUdp : fuzzTcp
  test(`dns-fuzz: ${transport} — ${FUZZ_COUNT} random packets (some over 4 KB), then a valid query still answers correctly`, async () => {
    const running = await startServer()
    try {
      const tally = await run(running.port, sample(randomBytes, 11), `${transport} random`)
      assert.is(tally.sentinels, FUZZ_COUNT)
      const dropped = running.metrics.value('dns_malformed_total', { transport, outcome: 'dropped' })
      const formerr = running.metrics.value('dns_malformed_total', { transport, outcome: 'formerr' })
      assert.is(tally.replies + dropped, FUZZ_COUNT, 'every packet got exactly one reply or was counted as dropped')
      assert.ok(formerr > FUZZ_COUNT / 4, `${formerr} FORMERR`)
      assertNoInternalErrors(running.metrics)
      await assertStillAnswers(running.port)
    } finally { await running.stop() }
  })

  test(`dns-fuzz: ${transport} — ${FUZZ_COUNT} mutated valid queries (bit flips, cuts, inserted pointers, bad counts), then a valid query still answers`, async () => {
    const running = await startServer()
    try {
      const tally = await run(running.port, sample(mutatedQuery, 12), `${transport} mutated`)
      assert.is(tally.sentinels, FUZZ_COUNT)
      assert.is(tally.replies + running.metrics.value('dns_malformed_total', { transport, outcome: 'dropped' }), FUZZ_COUNT, 'one reply or a counted drop each')
      assert.ok(tally.replies > FUZZ_COUNT / 4, `many mutants are answered (${tally.replies})`)
      assert.ok(running.metrics.value('dns_malformed_total', { transport, outcome: 'formerr' }) > 100, 'and many get FORMERR')
      assertNoInternalErrors(running.metrics)
      await assertStillAnswers(running.port)
    } finally { await running.stop() }
  })
}

/** Header, "www.anycast.form" A IN, then an additional record whose owner points at itself. */
function compressionLoop (): Uint8Array {
  const question = [3, ...Buffer.from('www'), 7, ...Buffer.from('anycast'), 4, ...Buffer.from('form'), 0, 0, 1, 0, 1]
  const at = 12 + question.length
  return Uint8Array.from([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, ...question, 0xc0, at, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])
}

test('dns-fuzz: a compression-pointer loop gets FORMERR within 500 ms over UDP and TCP', async () => {
  const running = await startServer()
  try {
    for (const transport of ['udp', 'tcp'] as const) {
      const started = performance.now()
      const reply = transport === 'udp' ? await udpOnce(running.port, compressionLoop()) : await tcpOnce(running.port, compressionLoop())
      const elapsedMs = performance.now() - started
      const packet = dnsPacket.decode(reply) as DecodedPacket & { rcode: string }
      assert.equal([packet.id, packet.rcode], [0xabcd, 'FORMERR'], transport)
      assert.ok(elapsedMs < 500, `${transport} took ${elapsedMs.toFixed(1)} ms`)
    }
  } finally { await running.stop() }
})

async function udpOnce (port: number, bytes: Uint8Array): Promise<Buffer> {
  const socket: UdpSocket = createSocket('udp4')
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('no reply')) }, WAIT_MS)
      socket.once('message', (message) => { clearTimeout(timer); resolve(message) })
      socket.send(bytes, port, '127.0.0.1')
    })
  } finally { socket.close() }
}

async function tcpOnce (port: number, bytes: Uint8Array): Promise<Buffer> {
  const socket = connect(port, '127.0.0.1')
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('no reply')) }, WAIT_MS)
      let buffered = Buffer.alloc(0)
      socket.on('error', reject)
      socket.on('data', (chunk) => {
        buffered = Buffer.concat([buffered, chunk])
        if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) { clearTimeout(timer); resolve(buffered.subarray(2, 2 + buffered.readUInt16BE(0))) }
      })
      socket.write(frame(bytes))
    })
  } finally { socket.destroy() }
}

test('dns-fuzz: 60 TCP connections writing random unframed byte streams never stall the server; all connections end', async () => {
  const running = await startServer()
  try {
    const streams = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { numRuns: 60, seed: 13 })
    await Promise.all(streams.map(async (stream) => {
      const socket: Socket = connect(running.port, '127.0.0.1')
      socket.on('data', () => {})
      await new Promise<void>((resolve) => {
        socket.on('error', () => { resolve() })
        socket.once('close', () => { resolve() })
        // Half-close after writing: a partial last frame then waits for the idle timeout (500 ms).
        socket.once('connect', () => { socket.end(stream) })
      })
    }))
    await assertStillAnswers(running.port)
    const deadline = Date.now() + WAIT_MS
    while (running.metrics.value('dns_tcp_connections') !== 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.is(running.metrics.value('dns_tcp_connections'), 0)
    assertNoInternalErrors(running.metrics)
  } finally { await running.stop() }
})

test.run()
