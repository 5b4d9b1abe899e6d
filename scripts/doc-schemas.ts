// Writes the JSON Schema of the catalogue upload (shared/document-schemas.ts, the one the server
// checks PUT /v1/admin/catalogue against) to docs/catalogue.schema.json, where shops read it and
// their tools validate against it. doc-schemas.test.ts fails when the file differs from the code:
//   npx tsx scripts/doc-schemas.ts
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { format, resolveConfig } from 'prettier'
import { CATALOGUE_SCHEMA } from '../shared/document-schemas'

export const CATALOGUE_SCHEMA_FILE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../docs/catalogue.schema.json',
)

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const options = (await resolveConfig(CATALOGUE_SCHEMA_FILE)) ?? {}
  const text = await format(JSON.stringify(CATALOGUE_SCHEMA), { ...options, parser: 'json' })
  writeFileSync(CATALOGUE_SCHEMA_FILE, text)
  console.log(`wrote ${path.relative(process.cwd(), CATALOGUE_SCHEMA_FILE)}`)
}
