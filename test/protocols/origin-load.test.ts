// Announced load from proxied connections: active ÷ capacity in 0.1 steps, overloaded at capacity.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { connectionLoad, isOverloaded } from '../../src/protocols/origin-load.ts'

const rows: Array<[active: number, capacity: number | undefined, load: number, overloaded: boolean]> = [
  [0, 10, 0, false],
  [1, 10, 0.1, false],
  [3, 10, 0.3, false],
  [7, 20, 0.3, false],
  [9, 10, 0.9, false],
  [10, 10, 1, true],
  [25, 10, 1, true],
  [5, undefined, 0, false],
  [5, 0, 0, false],
  [1, 3, 0.3, false],
  [2, 3, 0.6, false]
]

for (const [active, capacity, load, overloaded] of rows) {
  test(`origin load: ${active} open of capacity ${String(capacity)} → load ${load}${overloaded ? ', overloaded' : ''}`, () => {
    assert.is(connectionLoad(active, capacity), load)
    assert.is(isOverloaded(active, capacity), overloaded)
  })
}

test.run()
