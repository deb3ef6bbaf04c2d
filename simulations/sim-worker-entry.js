// Worker-thread entry for sim-workers.ts, in plain JavaScript: on Node 20 a worker does not get
// TypeScript loaders from --import, so it registers tsx itself (as bin/form-anycast.js does), then
// loads the polyfill and the TypeScript worker body.
import { register } from 'tsx/esm/api'

register()
await import('../src/runtime/polyfill.ts')
await import('./sim-worker.ts')
