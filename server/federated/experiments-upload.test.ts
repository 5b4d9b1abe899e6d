import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateModelManifest } from '../../shared/artifacts'
import type { ModelManifest } from '../../shared/protocol'
import { writeTestRelease } from '../../test/fixtures/exported-release'
import { setNodeBackend } from '../../model/node-backend'
import { createApp } from '../app'
import { resolveFederationConfig } from '../config'
import { openSqliteStore } from '../storage/sqlite-store'
import type { FederationStore } from '../storage/store'
import { createFederation, type Federation } from './service'

// The operator's experiments (PUT /v1/admin/experiments, P30): published as a version with the
// same model, in the manifest every device reads; a malformed upload names the field and
// changes nothing; an empty list ends them.
const dir = mkdtempSync(path.join(tmpdir(), 'pocketrec-experiments-upload-'))
const ADMIN = 'the-experiments-upload-test-admin-token'
let store: FederationStore
let federation: Federation
let app: ReturnType<typeof createApp>

beforeAll(async () => {
  await setNodeBackend('cpu')
  const artifacts = path.join(dir, 'artifacts')
  await writeTestRelease(8, artifacts)
  store = openSqliteStore(path.join(dir, 'server.db'))
  federation = await createFederation(
    store,
    resolveFederationConfig({ artifactsDir: artifacts, adminToken: ADMIN, promotion: 'gated' }),
  )
  app = createApp({ distDir: dir, federation: federation.deps })
}, 60_000)

afterAll(async () => {
  await federation?.close()
  await store?.close()
  rmSync(dir, { recursive: true, force: true })
})

const served = async () =>
  (await (await app.request('/artifacts/manifest.json')).json()) as ModelManifest

async function upload(body: unknown, token = ADMIN) {
  const response = await app.request('/v1/admin/experiments', {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: response.status, ...((await response.json()) as Record<string, unknown>) }
}

const holdout = {
  id: 'holdout',
  key: 'spring-2027',
  arms: [
    { name: 'model', share: 9, lists: 'model' },
    { name: 'pools', share: 1, lists: 'pools' },
  ],
}

describe('the experiments upload (P30)', () => {
  it('publishes the experiments with the same model, in a manifest devices accept', async () => {
    const before = await served()
    const answer = await upload({ type: 'pocketrec-experiments', experiments: [holdout] })
    expect(answer).toMatchObject({ status: 201, experiments: [holdout] })
    const after = await served()
    expect(after.version).not.toBe(before.version)
    expect(after.model).toEqual(before.model)
    expect(after.experiments).toEqual([holdout])
    expect(validateModelManifest(after).ok).toBe(true)
  })

  it('refuses a malformed upload with E_EXPERIMENTS naming the field, and changes nothing', async () => {
    const before = await served()
    const cases: Array<[unknown, RegExp]> = [
      [
        { type: 'pocketrec-experiments', experiments: [{ ...holdout, arms: [holdout.arms[0]] }] },
        /arms/,
      ],
      [
        {
          type: 'pocketrec-experiments',
          experiments: [
            { ...holdout, arms: [holdout.arms[0], { ...holdout.arms[1], lists: 'random' }] },
          ],
        },
        /lists/,
      ],
      [{ type: 'pocketrec-experiments', experiments: [{ ...holdout, id: 'a b' }] }, /id/],
      [{ type: 'pocketrec-experiments', experiments: [holdout, holdout] }, /distinct ids/],
      [{ type: 'pocketrec-experiments', experiments: [{ ...holdout, colour: 'red' }] }, /colour/],
      [{ type: 'pocketrec-rules', experiments: [] }, /type/],
    ]
    for (const [body, field] of cases) {
      const answer = await upload(body)
      expect(answer).toMatchObject({ status: 400, error: 'E_EXPERIMENTS' })
      expect(answer).toHaveProperty('message', expect.stringMatching(field))
    }
    expect(
      await upload({ type: 'pocketrec-experiments', experiments: [] }, 'not-the-token'),
    ).toMatchObject({
      status: 401,
      error: 'E_ADMIN',
    })
    expect(await served()).toEqual(before)
  })

  it('ends every experiment with an empty list', async () => {
    const answer = await upload({ type: 'pocketrec-experiments', experiments: [] })
    expect(answer.status).toBe(201)
    expect(answer).not.toHaveProperty('experiments')
    expect(await served()).not.toHaveProperty('experiments')
  })
})
