// Clocks: the real one for production and a heap-based virtual one for tests and the simulator.
// Both satisfy the `Clock` port and xstate's `clock` option. xstate's own SimulatedClock rescans
// every timer on each step (quadratic; it ran out of memory at 10,000 actors), so the virtual clock
// keeps a heap instead. Both accept any finite delay and reject Infinity, so the worlds agree.
import type { Clock, TimerHandle } from './ports.ts'

type NodeTimeout = ReturnType<typeof globalThis.setTimeout>

export interface RealClockOptions {
  /** Unref every timer so pending timers alone never keep the process alive. */
  unref?: boolean
}

/** Node fires any longer delay after 1 ms (with a warning); a 30-day lease must not expire at once. */
const MAX_PLATFORM_DELAY_MS = 2 ** 31 - 1

/** Handle for a delay longer than the platform allows: a chain of shorter timeouts. */
class LongTimeout {
  current: NodeTimeout | undefined
}

export function createRealClock (options: RealClockOptions = {}): Clock {
  const unref = options.unref === true
  const arm = (callback: () => void, delayMs: number): NodeTimeout => {
    const timeout = globalThis.setTimeout(callback, delayMs)
    if (unref) timeout.unref()
    return timeout
  }
  const armLong = (callback: () => void, delayMs: number): LongTimeout => {
    const handle = new LongTimeout()
    const dueMs = Date.now() + delayMs
    const armNext = (): void => {
      const remainingMs = dueMs - Date.now()
      handle.current = remainingMs > MAX_PLATFORM_DELAY_MS ? arm(armNext, MAX_PLATFORM_DELAY_MS) : arm(callback, remainingMs)
    }
    armNext()
    return handle
  }
  return {
    now: () => Date.now(),
    setTimeout (callback: () => void, delayMs: number): TimerHandle {
      if (delayMs === Infinity) throw new RangeError('RealClock.setTimeout: delayMs must be finite')
      return delayMs > MAX_PLATFORM_DELAY_MS ? armLong(callback, delayMs) : arm(callback, delayMs)
    },
    clearTimeout (handle: TimerHandle): void {
      globalThis.clearTimeout((handle instanceof LongTimeout ? handle.current : handle) as NodeTimeout | undefined)
    }
  }
}

/** Thrown when one call would fire more timers than the clock's limit: almost always a livelock. */
export class TimerLimitError extends Error {
  override name = 'TimerLimitError'
}

/** One scheduled callback. Also the opaque handle given to callers. */
class VirtualTimer {
  constructor (
    readonly owner: VirtualClock,
    /** null once fired or cleared, so a late clearTimeout is a no-op. */
    public callback: (() => void) | null
  ) {}
}

const HEAP_ARITY = 4
const INITIAL_HEAP_CAPACITY = 1024

/**
 * A 4-ary min-heap ordered by (due time, sequence): equal due times fire in the order they were set.
 * Keys live in typed arrays beside the timers so sifting compares contiguous numbers instead of
 * chasing pointers to timer objects scattered through a large JS heap; four children per node
 * halve the depth. With 100,000 cache-cold actors a fire costs about 0.5 µs (bench/clock.ts).
 */
class TimerHeap {
  size = 0
  private dueMs = new Float64Array(INITIAL_HEAP_CAPACITY)
  private seqs = new Float64Array(INITIAL_HEAP_CAPACITY)
  private readonly items: Array<VirtualTimer | undefined> = []

  topTimer (): VirtualTimer | undefined {
    return this.size > 0 ? this.items[0] : undefined
  }

  topDueMs (): number {
    return this.dueMs[0]!
  }

  push (timer: VirtualTimer, dueMs: number, seq: number): void {
    if (this.size === this.dueMs.length) this.grow()
    this.siftUp(this.size++, timer, dueMs, seq)
  }

  pop (): void {
    const last = --this.size
    const timer = this.items[last]!
    this.items[last] = undefined
    if (last > 0) this.siftDown(0, timer, this.dueMs[last]!, this.seqs[last]!)
  }

  /** Keeps only timers `keep` accepts, then restores heap order bottom-up in O(n). */
  filter (keep: (timer: VirtualTimer) => boolean): void {
    const { items, dueMs, seqs } = this
    let kept = 0
    for (let i = 0; i < this.size; i++) {
      const timer = items[i]!
      if (!keep(timer)) continue
      items[kept] = timer
      dueMs[kept] = dueMs[i]!
      seqs[kept] = seqs[i]!
      kept++
    }
    items.length = kept
    this.size = kept
    for (let i = Math.floor((kept - 2) / HEAP_ARITY); i >= 0; i--) this.siftDown(i, items[i]!, dueMs[i]!, seqs[i]!)
  }

  private grow (): void {
    const dueMs = new Float64Array(this.dueMs.length * 2)
    const seqs = new Float64Array(this.seqs.length * 2)
    dueMs.set(this.dueMs)
    seqs.set(this.seqs)
    this.dueMs = dueMs
    this.seqs = seqs
  }

  private place (i: number, timer: VirtualTimer, dueMs: number, seq: number): void {
    this.items[i] = timer
    this.dueMs[i] = dueMs
    this.seqs[i] = seq
  }

  private siftUp (i: number, timer: VirtualTimer, due: number, seq: number): void {
    const { items, dueMs, seqs } = this
    while (i > 0) {
      const parent = Math.floor((i - 1) / HEAP_ARITY)
      const parentDue = dueMs[parent]!
      if (parentDue < due || (parentDue === due && seqs[parent]! < seq)) break
      this.place(i, items[parent]!, parentDue, seqs[parent]!)
      i = parent
    }
    this.place(i, timer, due, seq)
  }

  private siftDown (i: number, timer: VirtualTimer, due: number, seq: number): void {
    const { items, dueMs, seqs, size } = this
    for (;;) {
      const first = i * HEAP_ARITY + 1
      if (first >= size) break
      let best = first
      let bestDue = dueMs[first]!
      let bestSeq = seqs[first]!
      const end = Math.min(first + HEAP_ARITY, size)
      for (let child = first + 1; child < end; child++) {
        const childDue = dueMs[child]!
        if (childDue < bestDue || (childDue === bestDue && seqs[child]! < bestSeq)) {
          best = child
          bestDue = childDue
          bestSeq = seqs[child]!
        }
      }
      if (bestDue > due || (bestDue === due && bestSeq > seq)) break
      this.place(i, items[best]!, bestDue, bestSeq)
      i = best
    }
    this.place(i, timer, due, seq)
  }
}

export interface VirtualClockOptions {
  /** Most timers one advance/runUntil/runAll call may fire before it throws TimerLimitError. */
  maxTimersPerCall?: number
}

export const DEFAULT_MAX_TIMERS_PER_CALL = 50_000_000
/** Cleared timers stay in the heap until popped; compact once they outnumber live ones and this. */
const COMPACT_MIN_CLEARED = 1024

/**
 * Deterministic clock for tests and simulation. Time moves only when told to; before a timer fires,
 * `now()` is set to its due time, so a delay set from inside a callback is exact.
 */
export class VirtualClock implements Clock {
  private nowMs: number
  private readonly heap = new TimerHeap()
  private nextSeq = 0
  private clearedInHeap = 0
  private running = false
  private readonly maxTimersPerCall: number

  constructor (startMs = 0, options: VirtualClockOptions = {}) {
    if (!Number.isFinite(startMs)) throw new RangeError(`VirtualClock: startMs must be finite, got ${startMs}`)
    const limit = options.maxTimersPerCall ?? DEFAULT_MAX_TIMERS_PER_CALL
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`VirtualClock: maxTimersPerCall must be a positive integer, got ${limit}`)
    }
    this.nowMs = startMs
    this.maxTimersPerCall = limit
  }

  now (): number {
    return this.nowMs
  }

  /** Negative or NaN delays mean "as soon as possible" (0), like the platform's setTimeout. */
  setTimeout (callback: () => void, delayMs: number): TimerHandle {
    if (typeof callback !== 'function') throw new TypeError('VirtualClock.setTimeout: callback must be a function')
    const delay = delayMs > 0 ? delayMs : 0
    if (delay === Infinity) throw new RangeError('VirtualClock.setTimeout: delayMs must be finite')
    const timer = new VirtualTimer(this, callback)
    this.heap.push(timer, this.nowMs + delay, this.nextSeq++)
    return timer
  }

  /** Handles from another clock, fired timers and junk are ignored, like the platform's clearTimeout. */
  clearTimeout (handle: TimerHandle): void {
    if (!(handle instanceof VirtualTimer) || handle.owner !== this || handle.callback === null) return
    handle.callback = null
    this.clearedInHeap++
    this.maybeCompact()
  }

  /** Timers set and neither fired nor cleared. */
  get pendingCount (): number {
    return this.heap.size - this.clearedInHeap
  }

  /** Due time of the next live timer, if any. */
  nextDueMs (): number | undefined {
    return this.peekLive() === undefined ? undefined : this.heap.topDueMs()
  }

  /** Fires every timer due within [now, now + ms], in order, then leaves now at now + ms. */
  advance (ms: number): number {
    if (!(ms >= 0) || !Number.isFinite(ms)) {
      throw new RangeError(`VirtualClock.advance: ms must be a finite number >= 0, got ${ms}`)
    }
    return this.runUntil(this.nowMs + ms)
  }

  /**
   * Fires every timer due at or before tMs, then sets now to tMs. Returns how many fired. If a
   * callback throws, the error propagates and now stays at that timer's due time.
   */
  runUntil (tMs: number): number {
    if (!Number.isFinite(tMs) || tMs < this.nowMs) {
      throw new RangeError(`VirtualClock.runUntil: tMs must be finite and >= now (${this.nowMs}), got ${tMs}`)
    }
    const fired = this.drain(tMs, this.maxTimersPerCall)
    this.nowMs = tMs
    return fired
  }

  /** Fires the next single live timer, moving now to its due time. False if none was pending. */
  step (): boolean {
    return this.drain(Infinity, 1) === 1
  }

  /**
   * Fires timers until none are pending. A timer that re-arms itself never drains, so the run is
   * bounded: past maxTimers it throws TimerLimitError rather than spin forever.
   */
  runAll (options: { maxTimers?: number } = {}): number {
    const maxTimers = options.maxTimers ?? this.maxTimersPerCall
    if (!Number.isSafeInteger(maxTimers) || maxTimers < 0) {
      throw new RangeError(`VirtualClock.runAll: maxTimers must be an integer >= 0, got ${maxTimers}`)
    }
    const fired = this.drain(Infinity, maxTimers)
    if (this.pendingCount > 0) {
      throw new TimerLimitError(`VirtualClock.runAll: fired ${fired} timers and ${this.pendingCount} are still pending (maxTimers ${maxTimers}); a timer probably re-arms itself`)
    }
    return fired
  }

  /**
   * Fires live timers due at or before limitMs, at most maxFired of them. Stops at exactly maxFired
   * when called from step/runAll; for runUntil, reaching the limit with more due is a livelock.
   */
  private drain (limitMs: number, maxFired: number): number {
    if (this.running) throw new Error('VirtualClock: advance/runUntil/step/runAll called from inside a timer callback')
    this.running = true
    let fired = 0
    try {
      for (let next = this.peekLive(); next !== undefined && this.heap.topDueMs() <= limitMs; next = this.peekLive()) {
        if (fired === maxFired) {
          if (limitMs === Infinity) break
          throw new TimerLimitError(`VirtualClock: more than ${maxFired} timers fired in one call (now ${this.nowMs}); a timer probably re-arms itself with delay 0`)
        }
        this.fire(next)
        fired++
      }
    } finally {
      this.running = false
    }
    return fired
  }

  /** The heap is consistent before the callback runs, so a throwing callback leaves a usable clock. */
  private fire (timer: VirtualTimer): void {
    this.nowMs = this.heap.topDueMs()
    this.heap.pop()
    const callback = timer.callback as () => void
    timer.callback = null
    callback()
  }

  /** Drops cleared timers off the top, then returns the earliest live one. */
  private peekLive (): VirtualTimer | undefined {
    const heap = this.heap
    let top = heap.topTimer()
    while (top !== undefined && top.callback === null) {
      heap.pop()
      this.clearedInHeap--
      top = heap.topTimer()
    }
    return top
  }

  /** Lazy deletion leaks if timers are cleared far from the top; rebuild once they dominate. */
  private maybeCompact (): void {
    if (this.clearedInHeap < COMPACT_MIN_CLEARED || this.clearedInHeap * 2 < this.heap.size) return
    this.heap.filter((timer) => timer.callback !== null)
    this.clearedInHeap = 0
  }
}
