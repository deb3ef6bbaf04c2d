import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { PrefixError, formatAddress, parseAddress, parsePrefix, prefixWithin } from '../../src/protocols/cidr.ts'

const valid: Array<[input: string, family: 4 | 6, canonical: string]> = [
  ['10.42.255.1/32', 4, '10.42.255.1/32'],
  ['10.0.0.0/8', 4, '10.0.0.0/8'],
  ['0.0.0.0/0', 4, '0.0.0.0/0'],
  ['192.168.4.0/22', 4, '192.168.4.0/22'],
  ['255.255.255.255/32', 4, '255.255.255.255/32'],
  ['2001:db8::/32', 6, '2001:db8::/32'],
  ['2001:DB8:0:0:0:0:0:0/32', 6, '2001:db8::/32'],
  ['2001:0db8:0000:0000:0000:0000:0000:0001/128', 6, '2001:db8::1/128'],
  ['::/0', 6, '::/0'],
  ['::1/128', 6, '::1/128'],
  ['fd00::/8', 6, 'fd00::/8'],
  // RFC 5952 §4.2.2: a single zero group is not compressed.
  ['2001:db8:0:1:1:1:1:1/128', 6, '2001:db8:0:1:1:1:1:1/128'],
  // RFC 5952 §4.2.3: the longest run is compressed; on a tie, the first.
  ['2001:0:0:1:0:0:0:1/128', 6, '2001:0:0:1::1/128'],
  ['2001:db8:0:0:1:0:0:1/128', 6, '2001:db8::1:0:0:1/128'],
  ['1::/16', 6, '1::/16'],
  ['0:0:0:0:0:0:0:1/128', 6, '::1/128'],
  ['1:0:0:0:0:0:0:0/128', 6, '1::/128'],
  ['1:2:3:4:5:6:7::/128', 6, '1:2:3:4:5:6:7:0/128'],
  // An IPv4 tail is read; the canonical text is hex.
  ['::ffff:10.0.0.1/128', 6, '::ffff:a00:1/128'],
  ['64:ff9b::192.0.2.0/120', 6, '64:ff9b::c000:200/120']
]

for (const [input, family, canonical] of valid) {
  test(`cidr: "${input}" parses as IPv${family} "${canonical}"`, () => {
    const parsed = parsePrefix(input)
    assert.is(parsed.family, family)
    assert.is(parsed.text, canonical)
    assert.is(`${parsed.address}/${parsed.length}`, canonical)
    assert.equal(parsePrefix(canonical), parsed, 'the canonical text parses to itself')
  })
}

const invalid: Array<[input: string, reason: RegExp]> = [
  ['', /missing "\/length"/],
  ['10.0.0.0', /missing "\/length"/],
  ['10.0.0.0/8/8', /more than one "\/"/],
  ['10.0.0.1/24', /host bits are set \(the network is 10\.0\.0\.0\/24\)/],
  ['2001:db8::1/32', /host bits are set \(the network is 2001:db8::\/32\)/],
  ['10.0.0.0/33', /length 33 is longer than 32 for IPv4/],
  ['::/129', /length 129 is longer than 128 for IPv6/],
  ['10.0.0.0/08', /length "08" must be a decimal number/],
  ['10.0.0.0/', /length "" must be a decimal number/],
  ['10.0.0.0/-1', /length "-1" must be a decimal number/],
  ['10.0.0.0/ 8', /length " 8" must be a decimal number/],
  ['10.0.0/8', /must have 4 dotted parts/],
  ['10.0.0.0.0/8', /must have 4 dotted parts/],
  ['10.0.0.256/32', /"256" is larger than 255/],
  ['10.0.0.01/32', /"01" must be decimal without leading zeros/],
  ['10.0.0.+1/32', /"\+1" must be decimal/],
  ['10.0..0/8', /"" must be decimal/],
  [' 10.0.0.0/8', /" 10" must be decimal/],
  ['0x0a.0.0.0/8', /"0x0a" must be decimal/],
  ['abc/8', /neither an IPv4 nor an IPv6 address/],
  ['/8', /neither an IPv4 nor an IPv6 address/],
  ['1:2:3:4:5:6:7/128', /7 groups, not 8/],
  ['1:2:3:4:5:6:7:8:9/128', /9 groups, not 8/],
  ['1:2:3:4::5:6:7:8/128', /already 8 groups/],
  ['1::2::3/128', /more than one "::"/],
  ['1:::2/128', /empty group/],
  [':1::/128', /empty group/],
  ['1::2:/128', /empty group/],
  ['12345::/16', /"12345" must be 1 to 4 hex digits/],
  ['g::/16', /"g" must be 1 to 4 hex digits/],
  ['fe80::1%eth0/128', /zone identifiers/],
  ['1.2.3.4::/128', /IPv4 tail may only end/],
  ['::1.2.3.4:5/128', /IPv4 tail may only end/],
  ['::1.2.3/128', /must have 4 dotted parts/],
  ['1'.repeat(65), /longer than 64 characters/]
]

for (const [input, reason] of invalid) {
  test(`cidr: "${input.slice(0, 20)}" is rejected with ${reason.source}`, () => {
    try {
      parsePrefix(input)
    } catch (error) {
      assert.instance(error, PrefixError)
      assert.is((error as PrefixError).name, 'PrefixError')
      assert.is((error as PrefixError).input, input)
      assert.match((error as PrefixError).reason, reason)
      assert.ok((error as Error).message.startsWith('prefix "'), (error as Error).message)
      return
    }
    assert.unreachable(`"${input}" should not parse`)
  })
}

test('cidr: a non-string is rejected with PrefixError', () => {
  assert.throws(() => parsePrefix(42 as unknown as string), (error: unknown) => error instanceof PrefixError && /must be a string/.test((error as Error).message))
})

test('cidr: formatAddress rejects byte arrays that are not 4 or 16 long', () => {
  assert.throws(() => formatAddress(new Uint8Array(5)), /4 or 16 bytes/)
})

function masked (bytes: Uint8Array, length: number): Uint8Array {
  const copy = bytes.slice()
  for (let bit = length; bit < copy.byteLength * 8; bit++) copy[bit >> 3] &= ~(0x80 >> (bit & 7))
  return copy
}

// Addresses biased towards zero groups so that "::" compression is exercised.
const ipv6Bytes = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((groups) => new Uint8Array(groups.flatMap((group) => [group >> 8, group & 0xff])))
const ipv4Bytes = fc.uint8Array({ minLength: 4, maxLength: 4 })

test('cidr: property — any masked address/length prints canonically and parses back to the same bytes', () => {
  fc.assert(fc.property(fc.oneof(ipv4Bytes, ipv6Bytes), fc.nat(128), (raw, lengthSeed) => {
    const length = lengthSeed % (raw.byteLength * 8 + 1)
    const bytes = masked(raw, length)
    const text = `${formatAddress(bytes)}/${length}`
    const parsed = parsePrefix(text)
    assert.is(parsed.text, text)
    assert.equal(parseAddress(parsed.address).bytes, bytes)
  }), { seed: 1, numRuns: 2000 })
})

test('cidr: property — every uncompressed, upper-case, zero-padded IPv6 spelling normalises to the RFC 5952 form', () => {
  fc.assert(fc.property(ipv6Bytes, (bytes) => {
    const groups = Array.from({ length: 8 }, (_, index) => ((bytes[2 * index] << 8) | bytes[2 * index + 1]).toString(16).toUpperCase().padStart(4, '0'))
    const parsed = parsePrefix(`${groups.join(':')}/128`)
    assert.is(parsed.text, `${formatAddress(bytes)}/128`)
    assert.not.match(parsed.address, /:::|[A-F]|(^|:)0[0-9a-f]/)
    assert.ok((parsed.address.match(/::/g) ?? []).length <= 1)
  }), { seed: 2, numRuns: 2000 })
})

test('cidr: property — arbitrary strings either parse to a canonical text or throw PrefixError', () => {
  const alphabet = fc.constantFrom(...'0123456789abcdefABCDEF:./%x- '.split(''))
  fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: alphabet, maxLength: 50 })), (text) => {
    try {
      const parsed = parsePrefix(text)
      assert.equal(parsePrefix(parsed.text), parsed)
    } catch (error) {
      if (!(error instanceof PrefixError)) throw error
    }
  }), { seed: 3, numRuns: 5000 })
})

test('prefixWithin: inside, equal, wider, other family, unparseable', () => {
  const cases: Array<[string, string, boolean]> = [
    ['10.42.255.1/32', '10.42.255.0/24', true],
    ['10.42.255.0/24', '10.42.255.0/24', true],
    ['10.42.0.0/16', '10.42.255.0/24', false],
    ['10.42.254.1/32', '10.42.255.0/24', false],
    ['0.0.0.0/0', '10.42.255.0/24', false],
    ['fd00::1/128', '10.42.255.0/24', false],
    ['fd00:42::5/128', 'fd00:42::/48', true],
    ['not a prefix', '10.42.255.0/24', false]
  ]
  for (const [inner, outer, want] of cases) assert.is(prefixWithin(inner, outer), want, `${inner} within ${outer}`)
})

test.run()
