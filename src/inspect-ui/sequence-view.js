// The sequence view: one vertical lane per node, time running down over the window that ends at
// the current record, one arrow per message (from /api/sequence). Estimated departures are dashed.
// Each arrow carries data-from/-to/-type/-i, and clicking one moves the slider to its record.
import { element } from './svg.js'

const LANE_WIDTH = 130
const HEADER = 34
const MARGIN = 16
/** Labels on every arrow stop being readable beyond this; the tooltip still names each one. */
const MAX_LABELS = 400

/** Draws `view` (an /api/sequence answer) into a fresh SVG sized to the pane's height. */
export function drawSequence (view, height, onPick) {
  const width = Math.max(1, view.lanes.length) * LANE_WIDTH
  const bottom = Math.max(HEADER + 80, height - MARGIN)
  // A message that arrived in the window may have left before it: the axis starts at the earliest departure.
  const tStart = view.messages.reduce((earliest, message) => Math.min(earliest, message.tSent), view.tFrom)
  const span = Math.max(1e-9, view.tTo - tStart)
  const y = (t) => HEADER + ((t - tStart) / span) * (bottom - HEADER)
  const x = new Map(view.lanes.map((lane, index) => [lane, index * LANE_WIDTH + LANE_WIDTH / 2]))
  const svg = element('svg', { width, height: bottom + MARGIN, class: 'sequence' })
  const defs = element('defs')
  const marker = element('marker', { id: 'arrow-head', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' })
  marker.appendChild(element('path', { d: 'M0,0 L10,5 L0,10 z' }))
  defs.appendChild(marker)
  svg.appendChild(defs)
  for (const lane of view.lanes) {
    const group = element('g', { class: 'lane', 'data-node': lane })
    group.appendChild(element('text', { x: x.get(lane), y: 16, 'text-anchor': 'middle' }, lane))
    group.appendChild(element('line', { x1: x.get(lane), y1: HEADER - 8, x2: x.get(lane), y2: bottom }))
    svg.appendChild(group)
  }
  const labelled = view.messages.length <= MAX_LABELS
  for (const message of view.messages) {
    const x1 = x.get(message.from)
    const x2 = x.get(message.to)
    if (x1 === undefined || x2 === undefined) continue
    const y1 = y(message.tSent)
    const y2 = y(message.tReceived)
    const group = element('g', { class: `message${message.estimated ? ' estimated' : ''}`, 'data-from': message.from, 'data-to': message.to, 'data-type': message.type, 'data-i': message.i })
    group.appendChild(element('title', {}, `${message.from} → ${message.to}: ${message.type} · sent ${message.tSent.toFixed(1)} ms${message.estimated ? ' (estimated)' : ''} · received ${message.tReceived.toFixed(1)} ms · #${message.i}`))
    group.appendChild(element('line', { x1, y1, x2, y2, 'marker-end': 'url(#arrow-head)' }))
    if (labelled) group.appendChild(element('text', { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 3, 'text-anchor': 'middle' }, message.type))
    group.addEventListener('click', () => onPick(message.i))
    svg.appendChild(group)
  }
  for (const mark of view.marks) {
    const cx = x.get(mark.node)
    if (cx === undefined) continue
    const dot = element('circle', { class: 'mark', cx, cy: y(mark.t), r: 3.5, 'data-node': mark.node, 'data-type': mark.type })
    dot.appendChild(element('title', {}, `${mark.node}: ${mark.type} at ${mark.t.toFixed(1)} ms (#${mark.i})`))
    dot.addEventListener('click', () => onPick(mark.i))
    svg.appendChild(dot)
  }
  return svg
}
