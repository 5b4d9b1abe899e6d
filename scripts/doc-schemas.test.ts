import { readFileSync } from 'node:fs'
import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import { CATALOGUE_SCHEMA } from '../shared/document-schemas'
import { CATALOGUE_SCHEMA_FILE } from './doc-schemas'

describe('docs/catalogue.schema.json (issue 14)', () => {
  const published = JSON.parse(readFileSync(CATALOGUE_SCHEMA_FILE, 'utf8')) as unknown

  it('is the schema the server checks uploads against (else: npx tsx scripts/doc-schemas.ts)', () => {
    expect(published).toEqual(CATALOGUE_SCHEMA)
  })

  it('validates the README’s example as a shop’s own tools would', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const example = /<!-- catalogue example -->\s*```json\n([\s\S]*?)```/.exec(readme)
    expect(example, 'README: a ```json block after <!-- catalogue example -->').not.toBeNull()
    const validate = new Ajv({ strict: true }).compile(published as object)
    expect(validate(JSON.parse(example![1]!)), JSON.stringify(validate.errors)).toBe(true)
  })
})
