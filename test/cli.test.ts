// The commands a person runs, started for real as child processes on the small YooChoose sample.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { decodeWeights } from '../shared/weights-codec'
import { sharedDataDir } from '../train/data/paths'

const run = promisify(execFile)
const data = path.join(sharedDataDir(), 'yoochoose-clicks-100k-sessionrec')
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'pocketrec-cli-'))
afterAll(() => fs.rmSync(out, { recursive: true, force: true }))

function runScript(entry: string, args: string[]) {
  return run(process.execPath, ['scripts/run.mjs', entry, ...args], {
    maxBuffer: 1 << 24,
    timeout: 240_000,
  })
}

describe('train and eval commands', () => {
  it('trains, writes weights in three dtypes plus a report, and evaluates the saved model', async () => {
    const train = await runScript('train/cli/train.ts', [
      '--data',
      data,
      '--epochs',
      '1',
      '--out',
      out,
      '--val-cases',
      '500',
    ])
    expect(train.stderr).toMatch(
      /epoch 1\/1 step \d+\/\d+ · \d+ ex\/s · loss \d+\.\d+ · val R@20 .* · epoch ETA/,
    )
    expect(train.stderr).toMatch(/epoch 1: loss \d+\.\d+, \d+ ex\/s, validation Recall@20 \d+\.\d+/)
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'))
    expect(report.dataset).toBe('yoochoose-clicks-100k-sessionrec')
    expect(report.fit.epochs).toHaveLength(1)
    expect(report.command).toContain('npm run train -- --data')
    for (const name of ['model.prw', 'model.float16.prw', 'model.int8.prw']) {
      const file = decodeWeights(fs.readFileSync(path.join(out, name)))
      expect(file.meta.nItems).toBe(2933)
    }
    expect(report.bytes.int8).toBeLessThan(report.bytes.float16)
    expect(report.bytes.float16).toBeLessThan(report.bytes.float32)

    const evaluation = await runScript('train/cli/eval.ts', [
      '--data',
      data,
      '--model',
      path.join(out, 'model.prw'),
    ])
    const row = evaluation.stdout.split('\n').find((line) => line.startsWith('| GRU'))!
    const recall20 = Number(row.split('|')[9])
    // One epoch on a week of clicks: far above popularity (8.9 %), below a converged model.
    expect(recall20).toBeGreaterThan(30)
    const saved = JSON.parse(
      fs.readFileSync(path.join(out, 'eval-yoochoose-clicks-100k-sessionrec.json'), 'utf8'),
    )
    expect(saved.report.cases).toBe(10_152)
  }, 240_000) // a training run: 35 s alone on 2 cores, over 60 s beside other work

  it('export:artifacts ships the fine-tuning rate train --tune chose, unless --local-lr says otherwise', async () => {
    const tuned = fs.mkdtempSync(path.join(out, 'tuned-'))
    fs.copyFileSync(path.join(out, 'model.prw'), path.join(tuned, 'model.prw'))
    const report = { localTraining: { chosen: 0.0007, trials: [] } }
    fs.writeFileSync(path.join(tuned, 'report.json'), JSON.stringify(report))
    const exportTo = async (args: string[]) => {
      const dir = fs.mkdtempSync(path.join(out, 'artifacts-'))
      const model = path.join(tuned, 'model.prw')
      const result = await runScript('train/cli/export-artifacts.ts', ['--data', data, '--model', model, '--out', dir, ...args]) // prettier-ignore
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'))
      return { stdout: result.stdout, manifest }
    }
    const chosen = await exportTo([])
    expect(chosen.manifest.localTraining).toEqual({ learningRate: 0.0007 })
    expect(chosen.stdout).toMatch(/on-device fine-tuning rate: 0.0007 \(chosen by train --tune\)/)
    expect((await exportTo(['--local-lr', '0.002'])).manifest.localTraining).toEqual({ learningRate: 0.002 }) // prettier-ignore
    fs.writeFileSync(path.join(tuned, 'report.json'), JSON.stringify({ localTraining: { chosen: 'fast' } })) // prettier-ignore
    const failure = await exportTo([]).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    )
    expect(failure?.code).toBe(1)
    expect(failure?.stderr).toMatch(
      /report\.json: localTraining\.chosen must be a number in \(0, 0\.1\], got "fast"/,
    )
  }, 240_000)

  it('fails with a message naming the problem for a folder that holds no known layout', async () => {
    const empty = fs.mkdtempSync(path.join(out, 'empty-'))
    const failure = await runScript('train/cli/train.ts', ['--data', empty]).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    )
    expect(failure?.code).toBe(1)
    expect(failure?.stderr).toMatch(/train_sessions/)
  })

  it('refuses a corrupt model file with the codec error and no stack trace', async () => {
    const bad = path.join(out, 'bad.prw')
    const good = fs.readFileSync(path.join(out, 'model.prw'))
    fs.writeFileSync(bad, good.subarray(0, good.length - 10))
    const failure = await runScript('train/cli/eval.ts', ['--data', data, '--model', bad]).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    )
    expect(failure?.code).toBe(1)
    expect(failure?.stderr).toMatch(/^WeightsFormatError: /m)
  })
})

describe('npm run sim', () => {
  it('runs the sparse channels: the plaintext one and the two-server one publish the same models', async () => {
    const args = (scenario: string, results: string, ceiling: string) => [
      ...['--data', data, '--models', out, '--results', results],
      ...['--scenario', scenario, '--devices', '12', '--buffer', '4', '--ceiling', ceiling],
      ...['--pretrain-epochs', '1', '--eval-cases', '300', '--eval-every', '1', '--negatives', '8'],
    ]
    const plainFile = path.join(out, 'sim-sparse.json')
    const sim = await runScript('bench/sim/federated.ts', args('plaintext', plainFile, '12'))
    const plain = JSON.parse(fs.readFileSync(plainFile, 'utf8'))
    expect(plain.channel).toBe('sparse-plaintext')
    expect(plain.versions.map((v: { version: number }) => v.version)).toEqual([1, 2, 3, 4])
    expect(fs.existsSync(path.join(out, 'pretrain-0.2-e1.prw'))).toBe(true)
    // Every version is also scored apart on targets the pre-training saw and on new ones, and
    // on targets at least 100 of the devices hold and the rest (none of 12 devices' here).
    const groups = plain.versions[0].byTarget as { name: string; cases: number }[]
    expect(groups.map((g) => g.name)).toEqual([
      'seen in pre-training',
      'new since',
      'held by ≥ 100 devices',
      'held by < 100 devices',
    ])
    const [seen, fresh, head, tail] = groups
    expect(seen!.cases + fresh!.cases).toBeGreaterThan(0)
    expect(head!.cases + tail!.cases).toBe(seen!.cases + fresh!.cases)
    expect(plain.versions[3].byTarget.map((g: { cases: number }) => g.cases)).toEqual(
      groups.map((g) => g.cases),
    )
    // The ceiling trains centrally on the same 12 devices' sessions: at least one case each.
    expect(plain.ceilings).toHaveLength(1)
    expect(plain.ceilings[0].devices).toBe(12)
    expect(plain.ceilings[0].examples).toBeGreaterThanOrEqual(12)
    expect(sim.stdout).toMatch(
      /^\| ceiling: central epoch on 12 devices' sessions \| \| \d+\.\d+ /m,
    )
    expect(plain.report.contributions).toBe(12)
    // A device sends the rows it viewed (sessions hold at least two items), never the catalogue.
    expect(plain.report.rowsPerContribution).toBeGreaterThanOrEqual(2)
    expect(plain.report.rowsPerContribution).toBeLessThanOrEqual(32)
    expect(sim.stdout).toMatch(
      /^\| v4 \| 12 \| \d+\.\d+ \| \d+\.\d+ \| (\d+\.\d+ \/ ){3}\d+\.\d+ \|$/m,
    )

    const secureFile = path.join(out, 'sim-secure.json')
    await runScript('bench/sim/federated.ts', args('secure', secureFile, 'none'))
    const secure = JSON.parse(fs.readFileSync(secureFile, 'utf8'))
    // The same devices and seeds through DPF keys and shares: the same model, bit for bit.
    expect(plain.report.modelHashes).toHaveLength(3)
    expect(secure.report.modelHashes).toEqual(plain.report.modelHashes)
    expect(secure.versions.map((v: { recall20: number }) => v.recall20)).toEqual(
      plain.versions.map((v: { recall20: number }) => v.recall20),
    )
    expect(secure.report.secure.leaderBytes).toBeLessThanOrEqual(64 * 1024)
    expect(secure.report.secure.helperBytes).toBeLessThanOrEqual(64 * 1024)
  }, 240_000)
})

describe('npm run sim:ab', () => {
  it('shows the trained model’s lift over popularity, and counts A/A false alarms', async () => {
    const results = path.join(out, 'sim-ab.json')
    const sim = await runScript('bench/sim/ab.ts', [
      ...['--data', data, '--model', path.join(out, 'model.prw'), '--results', results],
      ...['--batch', '200', '--aa', '20', '--sigmas', '0,1'],
    ])
    const report = JSON.parse(fs.readFileSync(results, 'utf8'))
    expect(report.devices).toBeGreaterThan(3000)
    const [exact, noised] = report.rows
    expect(exact.sigma).toBe(0)
    // Without noise the server ends with the devices' true totals; with it, it does not.
    expect(exact.serverEqualsTrue).toBe(true)
    expect(noised.serverEqualsTrue).toBe(false)
    // One epoch on the sample: the model's lists are clicked far more often than popularity's,
    // and the always-valid interval says so.
    expect(exact.rates[1]).toBeGreaterThan(3 * exact.rates[0])
    expect(exact.alwaysValid[0]).toBeGreaterThan(0)
    expect(exact.decidedAtDevices).toBeLessThanOrEqual(exact.devices)
    expect(exact.looks.length).toBeGreaterThan(10)
    expect(exact.aa.runs).toBe(20)
    expect(exact.aa.sequential).toBeLessThanOrEqual(3)
    expect(sim.stdout).toMatch(/A\/A, 20 runs: the always-valid test flagged \d+/)
  }, 240_000)
})

describe('npm run bench:explore', () => {
  it('gives the exploration share of the slots to new items, and says what it costs', async () => {
    const results = path.join(out, 'explore.json')
    const bench = await runScript('bench/explore.ts', [
      ...['--data', data, '--model', path.join(out, 'model.prw'), '--results', results],
      ...['--sessions', '300', '--share', '0.1', '--batch', '50'],
    ])
    const report = JSON.parse(fs.readFileSync(results, 'utf8'))
    const [off, on, fleet] = report.arms
    expect(report.arms.map((a: { arm: string }) => a.arm)).toEqual(['off', 'own counts', 'fleet counts']) // prettier-ignore
    expect([off.explore, on.explore, fleet.explore]).toEqual([0, 0.1, 0.1])
    expect(off.exploredShown).toBe(0)
    // Two of each list of 20 are explored; the rest is the model's.
    expect(on.exploredShown).toBeCloseTo(10, 0)
    expect(fleet.exploredShown).toBeCloseTo(10, 0)
    expect(on.newShown).toBeGreaterThan(off.newShown)
    // Giving slots away costs the published protocol's Recall@20 (the model's 19th and 20th).
    expect(on.protocolRecall20).toBeLessThan(off.protocolRecall20)
    expect([report.batch, fleet.sigma]).toEqual([50, 1])
    // The latent-click replay: the same devices, explored items chosen three ways.
    expect(report.latent.rows.map((r: { name: string }) => r.name)).toEqual(['uniform draw', 'Thompson, own counts', 'Thompson, fleet counts, σ = 1']) // prettier-ignore
    expect(report.latent.rows.every((r: { shown: number }) => r.shown > 0)).toBe(true)
    expect(bench.stdout).toMatch(/\| 0\.1, fleet counts, σ = 1 \|/)
  }, 240_000)
})

describe('npm run sim:local -- --tune-lr', () => {
  it('compares the fine-tuning rates on validation, reports the best, and refuses to on test', async () => {
    const results = path.join(out, 'sim-local.json')
    const args = ['--data', data, '--model', path.join(out, 'model.prw'), '--sessions', '30', '--min-length', '6'] // prettier-ignore
    await runScript('bench/sim/local.ts', [
      ...args,
      ...['--on', 'validation', '--tune-lr', '0.0001,0.001', '--results', results],
    ])
    const report = JSON.parse(fs.readFileSync(results, 'utf8'))
    type Trial = { learningRate: number; recall20: number; mrr20: number }
    const trials: Trial[] = report.tune.trials
    expect(trials.map((r) => r.learningRate)).toEqual([0.0001, 0.001])
    // The trainer's chooser (train/local-rate.ts): the best Recall@20 + MRR@20.
    const top = Math.max(...trials.map((r) => r.recall20 + r.mrr20))
    expect(report.tune.chosen).toBe(trials.find((r) => r.recall20 + r.mrr20 === top)!.learningRate)
    expect(report.tune.global.recall20).toBeCloseTo(100 * report.global.metrics['recall@20'], 6)
    // The full run then uses the chosen rate.
    expect(report.fineTuning.learningRate).toBe(report.tune.chosen)
    await expect(runScript('bench/sim/local.ts', [...args, '--tune-lr', '0.001'])).rejects.toThrow(
      /--on validation, never on the test split/,
    )
  }, 240_000)
})
