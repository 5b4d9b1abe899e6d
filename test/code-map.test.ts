// The README's code map is the newcomer's way in: it must name every top-level folder and every
// folder under client/, server/, train/, model/ and bench/, and name nothing that is gone.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const MAPPED_ROOMS = ['client', 'server', 'train', 'model', 'bench']

const files = execFileSync('git', ['ls-files'], { encoding: 'utf8' }).split('\n').filter(Boolean)

/** Folders holding tracked files: every top-level one, and all of them inside the rooms. */
function trackedFolders(): string[] {
  const folders = new Set<string>()
  for (const file of files) {
    const parts = file.split('/').slice(0, -1)
    if (parts.length === 0) continue
    folders.add(`${parts[0]}/`)
    if (!MAPPED_ROOMS.includes(parts[0]!)) continue
    for (let depth = 2; depth <= parts.length; depth++) {
      folders.add(`${parts.slice(0, depth).join('/')}/`)
    }
  }
  return [...folders].sort()
}

/** The first column of the table under "## Code map": `folder/` or `folder/file` entries. */
function codeMapEntries(readme: string): string[] {
  const section = readme.split(/^## Code map$/m)[1]?.split(/^## /m)[0] ?? ''
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => /^\| `([^`]+)`/.exec(line)![1]!)
}

describe('the README code map', () => {
  const entries = codeMapEntries(readFileSync('README.md', 'utf8'))

  it('names every top-level folder and every folder inside client/, server/, train/, model/, bench/', () => {
    expect(entries.length).toBeGreaterThan(10)
    const mapped = new Set(entries)
    expect(trackedFolders().filter((folder) => !mapped.has(folder))).toEqual([])
  })

  it('names nothing that is not in the tree', () => {
    const tracked = (entry: string) =>
      entry.endsWith('/') ? files.some((file) => file.startsWith(entry)) : files.includes(entry)
    expect(entries.filter((entry) => !tracked(entry))).toEqual([])
  })

  it('reads the first column of the map, and only of the map', () => {
    const readme = [
      '## Before',
      '| `elsewhere/` | not the map |',
      '## Code map',
      '| folder | what |',
      '| --- | --- |',
      '| `model/` | the GRU |',
      '| `scripts/run.mjs` | runs entries |',
      '## Scripts',
      '| `npm start` | not the map either |',
    ].join('\n')
    expect(codeMapEntries(readme)).toEqual(['model/', 'scripts/run.mjs'])
  })
})
