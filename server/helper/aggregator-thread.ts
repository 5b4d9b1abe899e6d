// The helper's aggregation thread (bundled into .cache/ and started by aggregator.ts): verifying
// and expanding a batch's keys takes seconds (bench:dpf), and a batch of outcome reports expands
// a seed per report, so both run here, never on the thread that answers devices. It opens its own
// connection to the helper store.
import { parentPort, workerData } from 'node:worker_threads'
import { createNodeCipher } from '../federated/node-cipher'
import { serveJobs } from '../jobs/thread'
import { aggregateBatch } from './aggregate'
import { aggregateOutcomeBatch } from './aggregate-outcomes'
import type { AggregatorConfig, AggregatorJob } from './aggregator'
import { openHelperStore } from './open-helper-store'

const port = parentPort
if (!port) throw new Error('expected to run as a worker thread (server/helper/aggregator.ts)')
const config = workerData as AggregatorConfig
const store = await openHelperStore(config.store)
const cipher = createNodeCipher()

const deps = { store, settings: config.settings, cipher, now: Date.now }
serveJobs<AggregatorJob>(port, (job) =>
  job.type === 'aggregate'
    ? aggregateBatch(deps, new Uint8Array(job.body))
    : aggregateOutcomeBatch(deps, new Uint8Array(job.body)),
)
