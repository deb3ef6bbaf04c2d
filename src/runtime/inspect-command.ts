import type { Command } from 'commander'
export function registerInspectCommand (_program: Command, _io: unknown, _setExitCode: (code: number) => void): void {}
