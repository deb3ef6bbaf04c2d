// `form-anycast chart`: every format is parsed back here, so a printer that emits a dangling edge or
// an unbalanced block fails; bad names exit 2 naming the field.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { main } from '../../src/runtime/cli.ts'
import { ACTOR_KINDS, allStates, chartOf } from '../../src/runtime/chart-export.ts'

async function run (args: string[]): Promise<{ code: number, out: string, err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(['node', 'form-anycast', ...args], { out: (line) => out.push(line), err: (line) => err.push(line) })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

const SESSION_STATES = ['idle', 'connect', 'active', 'openSent', 'openConfirm', 'established']

/** Parses mermaid stateDiagram-v2: every line has a known shape; returns declared states and edges. */
function parseMermaid (text: string): { states: Set<string>, edges: Array<[string, string, string]> } {
  const lines = text.trimEnd().split('\n')
  assert.is(lines[0], 'stateDiagram-v2')
  const states = new Set<string>()
  const edges: Array<[string, string, string]> = []
  let depth = 0
  const id = '[A-Za-z_][A-Za-z0-9_]*'
  for (const raw of lines.slice(1)) {
    const line = raw.trim()
    let match: RegExpExecArray | null
    if ((match = new RegExp(`^state (${id}) \\{$`).exec(line)) !== null) { states.add(match[1]!); depth++ } else if (line === '}') { depth--; assert.ok(depth >= 0, 'unbalanced }') } else if (line === '--') assert.ok(depth > 0, '-- outside a composite state')
    else if ((match = new RegExp(`^state "[^"]+" as (${id})$`).exec(line)) !== null) states.add(match[1]!)
    else if ((match = new RegExp(`^\\[\\*\\] --> (${id})$`).exec(line)) !== null) edges.push(['[*]', match[1]!, ''])
    else if ((match = new RegExp(`^(${id}) --> (${id}) : ([^:]+)$`).exec(line)) !== null) edges.push([match[1]!, match[2]!, match[3]!])
    else if ((match = new RegExp(`^(${id})$`).exec(line)) !== null) states.add(match[1]!)
    else assert.unreachable(`not a stateDiagram-v2 statement: ${JSON.stringify(line)}`)
  }
  assert.is(depth, 0, 'every composite state is closed')
  return { states, edges }
}

test('chart peer-session --format mermaid: a stateDiagram-v2 with all six session states, every edge between declared states', async () => {
  const { code, out } = await run(['chart', 'peer-session', '--format', 'mermaid'])
  assert.is(code, 0)
  const { states, edges } = parseMermaid(out)
  for (const state of SESSION_STATES) assert.ok(states.has(state), `declares ${state}`)
  for (const [from, to] of edges) {
    assert.ok(from === '[*]' || states.has(from), `edge source ${from} declared`)
    assert.ok(states.has(to), `edge target ${to} declared`)
  }
  assert.ok(edges.some(([from, to, label]) => from === 'openConfirm' && to === 'established' && label === 'frame.received [isKeepalive]'))
  assert.ok(edges.some(([from, to, label]) => from === 'active' && to === 'connect' && label === 'after retryDelay [isInitiator]'), 'after delays appear as events')
})

test('chart --format mermaid parses for every actor kind, with every state of its machine', async () => {
  for (const kind of ACTOR_KINDS) {
    const { code, out } = await run(['chart', kind])
    assert.is(code, 0, kind)
    const { states } = parseMermaid(out)
    assert.ok(states.size >= allStates(chartOf(kind)).length, `${kind}: ${states.size} states declared`)
  }
})

test('chart --format dot: balanced braces, every edge endpoint declared as a node', async () => {
  for (const kind of ACTOR_KINDS) {
    const { code, out } = await run(['chart', kind, '--format', 'dot'])
    assert.is(code, 0)
    assert.match(out, new RegExp(`^digraph "${kind}" \\{`))
    let depth = 0
    for (const char of out.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
      if (char === '{') depth++
      if (char === '}') { depth--; assert.ok(depth >= 0) }
    }
    assert.is(depth, 0, `${kind}: braces balance`)
    const nodes = new Set([...out.matchAll(/^\s*("(?:[^"\\]|\\.)*") \[/gm)].map((match) => match[1]))
    const edges = [...out.matchAll(/^\s*("(?:[^"\\]|\\.)*") -> ("(?:[^"\\]|\\.)*")/gm)]
    assert.ok(edges.length > 0)
    for (const edge of edges) {
      assert.ok(nodes.has(edge[1]), `${kind}: edge source ${edge[1]!} declared`)
      assert.ok(nodes.has(edge[2]), `${kind}: edge target ${edge[2]!} declared`)
    }
  }
})

test('chart --format scxml: well-formed XML with state, parallel and transition elements; targets are state ids', async () => {
  const { code, out } = await run(['chart', 'peer-session', '--format', 'scxml'])
  assert.is(code, 0)
  const body = out.replace(/^<\?xml[^>]*\?>\n/, '')
  const stack: string[] = []
  const ids = new Set<string>()
  const targets: string[] = []
  const seen = new Set<string>()
  for (const tag of body.matchAll(/<(\/?)([a-z]+)((?:\s+[a-z]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, closing, name, attributes, selfClosing] = tag
    seen.add(name!)
    const attrs = Object.fromEntries([...attributes!.matchAll(/([a-z]+)="([^"]*)"/g)].map((match) => [match[1], match[2]]))
    if (attrs.id !== undefined) ids.add(attrs.id)
    if (attrs.target !== undefined) targets.push(...attrs.target.split(' '))
    if (closing === '/') assert.is(stack.pop(), name, 'closing tag matches')
    else if (selfClosing !== '/') stack.push(name!)
  }
  assert.is(stack.length, 0, 'every element closed')
  assert.is(body.replace(/<[^>]*>/g, '').trim(), '', 'nothing outside tags')
  for (const name of ['scxml', 'state', 'parallel', 'transition']) assert.ok(seen.has(name), `has <${name}>`)
  for (const target of targets) assert.ok(ids.has(target), `target ${target} is a state id`)
  assert.ok(ids.has('peer-session.opened.established'))
})

test('chart --format json: the chart of the machine, nested and parallel', async () => {
  const { code, out } = await run(['chart', 'peer-session', '--format', 'json'])
  assert.is(code, 0)
  const chart = JSON.parse(out) as ReturnType<typeof chartOf>
  const established = allStates(chart).find((state) => state.key === 'established')
  assert.is(established?.type, 'parallel')
  assert.equal(established?.states.map((state) => state.key), ['hold', 'keepalive'])
})

test('chart: an unknown actor or format exits 2 naming it', async () => {
  const actor = await run(['chart', 'peer-sesion'])
  assert.is(actor.code, 2)
  assert.match(actor.err, /actor: unknown actor "peer-sesion" \(known: peer-session/)
  const format = await run(['chart', 'peer-session', '--format', 'svg'])
  assert.is(format.code, 2)
  assert.match(format.err, /format: unknown format "svg"/)
})

test.run()
