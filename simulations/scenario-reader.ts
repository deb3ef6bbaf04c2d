// What scenario files (simulations/scenario.ts and scenario-faults.ts) are read with: the one schema
// walker of every outside input (src/runtime/field-reader.ts, which node configs use too, so a bad
// field is worded the same everywhere), and the shapes of the names a scenario gives.
export { FieldReader as Reader, join, describe } from '../src/runtime/field-reader.ts'

export const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/
export const NAME_HINT = 'lowercase letters, digits and dashes (at most 63)'
export const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
export const NODE_ID_HINT = 'letters, digits, ".", "_" and "-" (at most 64)'
