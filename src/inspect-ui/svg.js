// SVG element construction shared by the debugger's drawn views (sequence, map).
export const SVG = 'http://www.w3.org/2000/svg'

/** A new SVG element with `attributes` set and, when given, `text` as its content. */
export function element (name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name)
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value))
  if (text !== undefined) node.textContent = text
  return node
}
