// False "dead" verdicts, counted from outside production code: an inspection sink watches every
// origin prober (systemId `origin-probe:<origin>`, state `{ verdict: … }`) and, each time one enters
// `failed`, asks the world's ground truth whether the origin was in fact alive and reachable from
// the probing node at that instant, and had been since before any probe then in flight left. If it
// was, the verdict was false (DESIGN §5: fewer than one per 10⁶ probe intervals under 10 % loss).
// Loss does not count as unreachable: surviving it is what indirect probes (SWIM) are for. A verdict
// right after the origin came back or a partition healed is not judged: the probes that decided it
// left while the origin was in fact unreachable (a standby origin is probed every 5 s, so its
// verdict on a crash can land after the restart).
import type { InspectionSink } from '../src/runtime/inspection.ts'
import type { InspectionEvent } from '../src/runtime/ports.ts'

const ORIGIN_PROBE = 'origin-probe:'
/** Examples kept, so a bad run's result stays small. */
const MAX_EXAMPLES = 10

export interface FalseDeadInput {
  /** Whether events from `node` count now (a crashed node's actors winding down do not). */
  isObserved: (node: string) => boolean
  /**
   * Ground truth: `origin` is alive and packets get from `node` to it and back, and have since
   * before the longest probe now in flight left (false when it came back too recently to tell).
   */
  isAliveAndReachable: (node: string, origin: string) => boolean
}

export interface FalseDeadSink extends InspectionSink {
  /** Verdicts `failed` on origins that were alive and reachable. */
  readonly count: number
  /** Every `failed` verdict on an origin, false or not. */
  readonly failedVerdicts: number
  readonly examples: readonly string[]
}

/** The prober's verdict from an inspected state value (`{ schedule: …, verdict: 'failed' }`). */
function verdictOf (state: unknown): string | undefined {
  if (state === null || typeof state !== 'object') return undefined
  const verdict = (state as Record<string, unknown>).verdict
  if (typeof verdict === 'string') return verdict
  // A nested verdict state (`{ degraded: 'suspect' }`) names its parent.
  if (verdict !== null && typeof verdict === 'object') return Object.keys(verdict)[0]
  return undefined
}

export function createFalseDeadSink (input: FalseDeadInput): FalseDeadSink {
  /** Probers (`<node>\n<systemId>`) whose last verdict was failed; bounded by nodes × origins. */
  const failed = new Set<string>()
  const examples: string[] = []
  let count = 0
  let failedVerdicts = 0
  const write = (event: InspectionEvent): void => {
    if (!event.systemId.startsWith(ORIGIN_PROBE)) return
    const key = `${event.node}\n${event.systemId}`
    if (event.kind === 'actor.started' || event.kind === 'actor.stopped') { failed.delete(key); return }
    if (event.kind !== 'actor.snapshot') return
    if (verdictOf(event.state) !== 'failed') { failed.delete(key); return }
    if (failed.has(key)) return
    failed.add(key)
    if (!input.isObserved(event.node)) return
    failedVerdicts++
    const origin = event.systemId.slice(ORIGIN_PROBE.length)
    if (!input.isAliveAndReachable(event.node, origin)) return
    count++
    if (examples.length < MAX_EXAMPLES) examples.push(`t=${event.t} ${event.node} declared ${origin} failed while it was alive and reachable`)
  }
  return {
    write,
    get count () { return count },
    get failedVerdicts () { return failedVerdicts },
    examples
  }
}
