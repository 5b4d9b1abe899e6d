// The job thread's entry (bundled into .cache/ and started by jobs.ts): the server's heavy work
// away from the thread that answers requests. It opens its own connection to the store and runs
// one job at a time: publishing, outcome batches (P30c), scoring versions (tfjs WASM loads here and only here) and the
// admin uploads, whose JSON is parsed here.
import { parentPort, workerData } from 'node:worker_threads'
import {
  evaluateVersion,
  putValidationSet,
  reviewCandidates,
} from '../evaluation/evaluate-versions'
import { publishShopChange } from '../federated/catalogue-release'
import { releaseOutcomes } from '../federated/outcome-release'
import { publishIfDue } from '../federated/publisher'
import { openStore } from '../storage/open-store'
import type { Job, JobResults, JobThreadConfig } from './protocol'
import { serveJobs } from './thread'

const port = parentPort
if (!port) throw new Error('expected to run as a worker thread (server/jobs/jobs.ts starts it)')
const config = workerData as JobThreadConfig
// A store that cannot be opened ends the thread; jobs.ts rejects the calls and tries again.
const store = await openStore(config.store)
const { evaluation } = config

async function run(job: Job): Promise<JobResults[Job['type']]> {
  switch (job.type) {
    case 'publish':
      return publishIfDue({
        store,
        settings: config.settings,
        now: Date.now,
        promotion: config.promotion,
      })
    case 'outcomes':
      return releaseOutcomes({ store, settings: config.settings, now: Date.now })
    case 'review':
      return reviewCandidates(store, evaluation)
    case 'evaluate': {
      const record = await store.version(job.version)
      if (!record) return { status: 'unknown-version' }
      const metrics = await evaluateVersion(store, record, evaluation)
      return metrics
        ? { status: 'evaluated', version: record.version, metrics }
        : { status: 'no-validation' }
    }
    case 'put-validation':
      return putValidationSet(store, parseJson(job.body))
    case 'put-shop-change': {
      const change = { kind: job.kind, body: parseJson(job.body) }
      const result = await publishShopChange(store, change, Date.now)
      if (result.status !== 'published') return result
      const { version, manifest } = result.record
      const { catalogue, pools, rules, experiments } = manifest
      return {
        status: 'published',
        version,
        catalogue,
        pools,
        rules,
        ...(experiments ? { experiments } : {}),
      }
    }
  }
}

/** The body as JSON, or undefined when it is not: the guards then refuse it as any bad value. */
function parseJson(body: ArrayBuffer): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(body))
  } catch {
    return undefined
  }
}

// One job at a time: a publish and a shop change each take the next version number, and a
// second evaluation would only halve the speed of the first.
serveJobs(port, run)
