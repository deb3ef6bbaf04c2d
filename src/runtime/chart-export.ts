// State charts of the actor kinds, read from the machine definitions themselves (machine.root), so a
// chart can never drift from the code. One JSON form (ChartJson) feeds four printers — mermaid
// stateDiagram-v2, Graphviz dot, W3C SCXML — and the debugger, which lays it out with elkjs.
import type { AnyStateMachine } from 'xstate'
import { peerSessionMachine } from '../actors/peer-session.ts'
import { healthProberMachine } from '../actors/health-prober.ts'
import { prefixAnnouncerMachine } from '../actors/prefix-announcer.ts'
import { heartbeatMachine } from '../actors/heartbeat.ts'
import { leaseHolderMachine } from '../actors/lease-holder.ts'

export const ACTOR_MACHINES: Readonly<Record<string, AnyStateMachine>> = {
  'peer-session': peerSessionMachine,
  'health-prober': healthProberMachine,
  'prefix-announcer': prefixAnnouncerMachine,
  heartbeat: heartbeatMachine,
  'lease-holder': leaseHolderMachine
}
export const ACTOR_KINDS = Object.keys(ACTOR_MACHINES)
export const CHART_FORMATS = ['mermaid', 'dot', 'scxml', 'json'] as const
export type ChartFormat = typeof CHART_FORMATS[number]

export interface ChartTransition {
  /** The event type the machine receives (xstate.after.*, xstate.done.actor.* included), '' for always. */
  event: string
  /** What a reader should see: the event, `after holdTime`, `done openSession`, `always`. */
  label: string
  guard?: string
  /** Target state ids; empty for a transition that only runs actions. */
  targets: string[]
  reenter?: boolean
}

export interface ChartState {
  /** Full dotted id, as xstate names it: `peer-session.opened.openSent`. */
  id: string
  key: string
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history'
  /** Initial child id of a compound state. */
  initial?: string
  transitions: ChartTransition[]
  states: ChartState[]
}

export interface ChartJson { kind: string, root: ChartState }

export class ChartError extends Error {
  override name = 'ChartError'
  constructor (readonly field: 'actor' | 'format', message: string) { super(message) }
}

/** Structural view of xstate's StateNode: only the fields the chart reads. */
interface StateNodeView {
  id: string
  key: string
  type: ChartState['type']
  initial?: { target?: ReadonlyArray<{ id: string }> }
  transitions: Map<string, ReadonlyArray<TransitionView>>
  always?: ReadonlyArray<TransitionView>
  after: ReadonlyArray<{ eventType: string, delay: string | number }>
  invoke: ReadonlyArray<{ id: string, src: unknown }>
  states: Record<string, StateNodeView>
}
interface TransitionView { eventType: string, guard?: unknown, target?: ReadonlyArray<{ id: string }>, reenter?: boolean }

function guardName (guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined
  if (typeof guard === 'string') return guard
  if (typeof guard === 'object' && typeof (guard as { type?: unknown }).type === 'string') return (guard as { type: string }).type
  if (typeof guard === 'function') return guard.name === '' ? 'inline' : guard.name
  return 'inline'
}

function eventLabel (node: StateNodeView, eventType: string): string {
  if (eventType === '') return 'always'
  const delayed = node.after.find((after) => after.eventType === eventType)
  if (delayed !== undefined) return `after ${String(delayed.delay)}`
  for (const [prefix, word] of [['xstate.done.actor.', 'done'], ['xstate.error.actor.', 'error']] as const) {
    if (!eventType.startsWith(prefix)) continue
    const invoked = node.invoke.find((invoke) => eventType === `${prefix}${invoke.id}`)
    const src = invoked === undefined ? undefined : typeof invoked.src === 'string' ? invoked.src : invoked.id
    return `${word} ${src ?? eventType.slice(prefix.length)}`
  }
  return eventType
}

function chartState (node: StateNodeView): ChartState {
  const transitions: ChartTransition[] = []
  const add = (definition: TransitionView): void => {
    const transition: ChartTransition = {
      event: definition.eventType,
      label: eventLabel(node, definition.eventType),
      targets: (definition.target ?? []).map((target) => target.id)
    }
    const guard = guardName(definition.guard)
    if (guard !== undefined) transition.guard = guard
    if (definition.reenter === true) transition.reenter = true
    transitions.push(transition)
  }
  for (const definitions of node.transitions.values()) definitions.forEach(add)
  for (const definition of node.always ?? []) add({ ...definition, eventType: '' })
  const state: ChartState = { id: node.id, key: node.key, type: node.type, transitions, states: Object.values(node.states).map(chartState) }
  const initial = node.initial?.target?.[0]?.id
  if (node.type === 'compound' && initial !== undefined) state.initial = initial
  return state
}

export function chartOf (kind: string): ChartJson {
  const machine = ACTOR_MACHINES[kind]
  if (machine === undefined) throw new ChartError('actor', `unknown actor ${JSON.stringify(kind)} (known: ${ACTOR_KINDS.join(', ')})`)
  return { kind, root: chartState(machine.root as unknown as StateNodeView) }
}

export function allStates (chart: ChartJson): ChartState[] {
  const out: ChartState[] = []
  const visit = (state: ChartState): void => { out.push(state); state.states.forEach(visit) }
  chart.root.states.forEach(visit)
  return out
}

/** Short names for diagram ids: a state's key when unique in the chart, else its path with `_`. */
function shortNames (chart: ChartJson): Map<string, string> {
  const states = allStates(chart)
  const counts = new Map<string, number>()
  for (const state of states) counts.set(state.key, (counts.get(state.key) ?? 0) + 1)
  const names = new Map<string, string>()
  for (const state of states) {
    const name = counts.get(state.key) === 1 ? state.key : state.id.slice(chart.root.id.length + 1).replace(/\./g, '_')
    names.set(state.id, name.replace(/[^A-Za-z0-9_]/g, '_'))
  }
  names.set(chart.root.id, ANY_STATE)
  return names
}

/** Transitions declared on the machine itself apply in every state. */
const ANY_STATE = 'anyState'

function transitionText (transition: ChartTransition): string {
  return transition.guard === undefined ? transition.label : `${transition.label} [${transition.guard}]`
}

export function toMermaid (chart: ChartJson): string {
  const names = shortNames(chart)
  const name = (id: string): string => names.get(id) ?? id
  const lines = ['stateDiagram-v2']
  if (chart.root.transitions.some((transition) => transition.targets.length > 0)) lines.push(`  state "(any state)" as ${ANY_STATE}`)
  const edges: string[] = []
  const visit = (state: ChartState, indent: string): void => {
    for (const transition of state.transitions) {
      for (const target of transition.targets) edges.push(`  ${name(state.id)} --> ${name(target)} : ${transitionText(transition).replace(/:/g, ' ')}`)
    }
    if (state.states.length === 0) { lines.push(`${indent}${name(state.id)}`); return }
    lines.push(`${indent}state ${name(state.id)} {`)
    if (state.type === 'parallel') {
      state.states.forEach((child, index) => {
        if (index > 0) lines.push(`${indent}  --`)
        visit(child, indent + '  ')
      })
    } else {
      if (state.initial !== undefined) lines.push(`${indent}  [*] --> ${name(state.initial)}`)
      state.states.forEach((child) => visit(child, indent + '  '))
    }
    lines.push(`${indent}}`)
  }
  if (chart.root.initial !== undefined) lines.push(`  [*] --> ${name(chart.root.initial)}`)
  chart.root.states.forEach((state) => visit(state, '  '))
  for (const transition of chart.root.transitions) {
    for (const target of transition.targets) edges.push(`  ${ANY_STATE} --> ${name(target)} : ${transitionText(transition).replace(/:/g, ' ')}`)
  }
  return [...lines, ...edges].join('\n') + '\n'
}

const dotString = (text: string): string => JSON.stringify(text)

export function toDot (chart: ChartJson): string {
  const lines = [`digraph ${dotString(chart.kind)} {`, '  compound=true;', '  rankdir=LR;', '  node [shape=box, style=rounded];']
  const anchor = (state: ChartState): string => state.states.length === 0 ? state.id : `${state.id}.__anchor`
  const byId = new Map(allStates(chart).map((state) => [state.id, state]))
  const visit = (state: ChartState, indent: string): void => {
    if (state.states.length === 0) {
      lines.push(`${indent}${dotString(state.id)} [label=${dotString(state.key)}];`)
      return
    }
    lines.push(`${indent}subgraph ${dotString(`cluster_${state.id}`)} {`)
    lines.push(`${indent}  label=${dotString(state.type === 'parallel' ? `${state.key} (parallel)` : state.key)};`)
    lines.push(`${indent}  ${dotString(anchor(state))} [shape=point, label=""];`)
    state.states.forEach((child) => visit(child, indent + '  '))
    lines.push(`${indent}}`)
  }
  lines.push(`  ${dotString(`${chart.root.id}.__start`)} [shape=point, label=""];`)
  chart.root.states.forEach((state) => visit(state, '  '))
  if (chart.root.transitions.some((transition) => transition.targets.length > 0)) lines.push(`  ${dotString(chart.root.id)} [label="(any state)", style=dashed];`)
  const initial = chart.root.initial === undefined ? undefined : byId.get(chart.root.initial)
  if (initial !== undefined) lines.push(`  ${dotString(`${chart.root.id}.__start`)} -> ${dotString(anchor(initial))};`)
  const edge = (from: string, transition: ChartTransition): void => {
    for (const target of transition.targets) {
      const to = byId.get(target)
      lines.push(`  ${dotString(from)} -> ${dotString(to === undefined ? target : anchor(to))} [label=${dotString(transitionText(transition))}];`)
    }
  }
  for (const state of allStates(chart)) state.transitions.forEach((transition) => edge(anchor(state), transition))
  chart.root.transitions.forEach((transition) => edge(chart.root.id, transition))
  lines.push('}')
  return lines.join('\n') + '\n'
}

const xml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** W3C SCXML (https://www.w3.org/TR/scxml/): delays appear as events `after.<delay>`, guards as cond. */
export function toScxml (chart: ChartJson): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>',
    `<scxml xmlns="http://www.w3.org/2005/07/scxml" version="1.0" name="${xml(chart.kind)}" initial="${xml(chart.root.id)}">`]
  const transitions = (state: ChartState, indent: string): void => {
    for (const transition of state.transitions) {
      const event = transition.event === '' ? '' : ` event="${xml(transition.label.startsWith('after ') ? `after.${transition.label.slice(6)}` : transition.event)}"`
      const cond = transition.guard === undefined ? '' : ` cond="${xml(transition.guard)}"`
      const target = transition.targets.length === 0 ? '' : ` target="${xml(transition.targets.join(' '))}"`
      lines.push(`${indent}<transition${event}${cond}${target}/>`)
    }
  }
  const visit = (state: ChartState, indent: string): void => {
    const tag = state.type === 'parallel' ? 'parallel' : state.type === 'final' ? 'final' : 'state'
    const initial = state.initial === undefined ? '' : ` initial="${xml(state.initial)}"`
    lines.push(`${indent}<${tag} id="${xml(state.id)}"${initial}>`)
    transitions(state, indent + '  ')
    state.states.forEach((child) => visit(child, indent + '  '))
    lines.push(`${indent}</${tag}>`)
  }
  // Machine-level transitions hold in every state: SCXML says so with one wrapping state.
  lines.push(`  <state id="${xml(chart.root.id)}"${chart.root.initial === undefined ? '' : ` initial="${xml(chart.root.initial)}"`}>`)
  transitions(chart.root, '    ')
  chart.root.states.forEach((state) => visit(state, '    '))
  lines.push('  </state>', '</scxml>')
  return lines.join('\n') + '\n'
}

export function renderChart (kind: string, format: string): string {
  if (!(CHART_FORMATS as readonly string[]).includes(format)) throw new ChartError('format', `unknown format ${JSON.stringify(format)} (known: ${CHART_FORMATS.join(', ')})`)
  const chart = chartOf(kind)
  switch (format as ChartFormat) {
    case 'mermaid': return toMermaid(chart)
    case 'dot': return toDot(chart)
    case 'scxml': return toScxml(chart)
    case 'json': return JSON.stringify(chart, null, 2) + '\n'
  }
}
