// Seeded, forkable randomness. One seed drives a whole simulation; each node and subsystem takes a
// fork named after itself, so its stream depends only on (root seed, path of labels) and adding a
// node or a draw elsewhere never shifts anyone else's draws.
//
// Generator: sfc32 (Chris Doty-Humphrey's PractRand "small fast counting" generator, 128-bit state,
// passes PractRand and BigCrush), seeded through splitmix32. Fork seeds come from cyrb53
// (bryc, public domain), a 53-bit string hash, so a fork's seed is itself a valid seed.
import { getRandomValues } from 'node:crypto'
import type { Random } from './ports.ts'

const TWO_POW_32 = 4294967296
const TWO_POW_53 = 9007199254740992
/** sfc32's first outputs are correlated with the seed; skipping some is the author's advice. */
const WARM_UP_DRAWS = 15

function checkSeed (seed: number, where: string): void {
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`${where}: seed must be a safe integer, got ${String(seed)}`)
  }
}

/** Low and high 32-bit words of a safe integer (two's complement for negatives). */
function seedWords (seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / TWO_POW_32) >>> 0]
}

/** splitmix32 finaliser: a bijection on 32-bit words, so distinct seeds give distinct states. */
function splitmix32 (x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad)
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97)
  return (x ^ (x >>> 15)) >>> 0
}

const GOLDEN_GAMMA = 0x9e3779b9
const SEED_FROM_STRING_TAG = 0x5eed5eed

/** cyrb53 over `text`, with the two seed words folded into its two lanes. */
function hash53 (text: string, lowWord: number, highWord: number): number {
  let h1 = 0xdeadbeef ^ lowWord
  let h2 = 0x41c6ce57 ^ highWord
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ code, 2654435761)
    h2 = Math.imul(h2 ^ code, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507)
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507)
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return TWO_POW_32 * (0x1fffff & h2) + (h1 >>> 0)
}

class Sfc32Random implements Random {
  private a: number
  private b: number
  private c: number
  private d = 1

  constructor (readonly seed: number) {
    const [low, high] = seedWords(seed)
    this.a = splitmix32((low + GOLDEN_GAMMA) >>> 0)
    this.b = splitmix32((low + 2 * GOLDEN_GAMMA) >>> 0)
    this.c = splitmix32((high + GOLDEN_GAMMA) >>> 0)
    for (let i = 0; i < WARM_UP_DRAWS; i++) this.nextUint32()
  }

  nextUint32 (): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** 53 random bits, so tiny probabilities (loss 1e-12) are still represented. */
  next (): number {
    const high = this.nextUint32() >>> 5
    const low = this.nextUint32() >>> 6
    return (high * 67108864 + low) / TWO_POW_53
  }

  int (maxExclusive: number): number {
    if (!Number.isSafeInteger(maxExclusive) || maxExclusive < 1) {
      throw new RangeError(`Random.int: maxExclusive must be a safe integer >= 1, got ${String(maxExclusive)}`)
    }
    return maxExclusive <= TWO_POW_32 ? this.int32(maxExclusive) : this.int53(maxExclusive)
  }

  fork (label: string): Random {
    if (typeof label !== 'string') throw new TypeError('Random.fork: label must be a string')
    const [low, high] = seedWords(this.seed)
    return new Sfc32Random(hash53(label, low, high))
  }

  /** Rejection sampling: draws at or above the largest multiple of max would bias the modulo. */
  private int32 (max: number): number {
    const limit = TWO_POW_32 - (TWO_POW_32 % max)
    let x = this.nextUint32()
    while (x >= limit) x = this.nextUint32()
    return x % max
  }

  private int53 (max: number): number {
    const limit = TWO_POW_53 - (TWO_POW_53 % max)
    let x = this.nextUint53()
    while (x >= limit) x = this.nextUint53()
    return x % max
  }

  private nextUint53 (): number {
    return (this.nextUint32() & 0x1fffff) * TWO_POW_32 + this.nextUint32()
  }
}

/** A stream determined entirely by `seed` (any safe integer). */
export function createRandom (seed: number): Random {
  checkSeed(seed, 'createRandom')
  return new Sfc32Random(seed)
}

/** A stable seed from text, e.g. a scenario name. */
export function seedFromString (text: string): number {
  if (typeof text !== 'string') throw new TypeError('seedFromString: text must be a string')
  // A lane tag keeps seedFromString(x) from equalling createRandom(0).fork(x).seed.
  return hash53(text, SEED_FROM_STRING_TAG, SEED_FROM_STRING_TAG)
}

/** A fresh 53-bit seed from the OS, for the real world; print it so a run can be reproduced. */
export function randomSeed (): number {
  const words = getRandomValues(new Uint32Array(2))
  return (words[0]! & 0x1fffff) * TWO_POW_32 + words[1]!
}
