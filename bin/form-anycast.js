#!/usr/bin/env node
// Entry point. The Promise.withResolvers polyfill loads before anything else (libp2p needs it on
// Node 20); tsx runs the TypeScript sources directly, so `npm ci` is the only set-up step.
import { register } from 'tsx/esm/api'

register()
await import('../src/runtime/polyfill.ts')
const { main } = await import('../src/runtime/cli.ts')
const code = await main(process.argv)
process.exitCode = code
// Let stdout drain, then leave even if a library left a handle open.
setTimeout(() => process.exit(code), 50).unref()
