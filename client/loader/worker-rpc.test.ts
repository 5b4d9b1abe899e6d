// The page's comlink client against the real `Comlink.expose` the worker uses.
import { expose } from 'comlink'
import { afterEach, describe, expect, it } from 'vitest'
import { connectRpc, type RpcEndpoint } from './worker-rpc'
import { createFakeWorker, WORKER_STATUS } from './test-fakes'

const channels: MessageChannel[] = []

function connect(api: object) {
  const channel = new MessageChannel()
  channels.push(channel)
  expose(api, channel.port1)
  return connectRpc(channel.port2 as unknown as RpcEndpoint)
}

afterEach(() => {
  for (const { port1, port2 } of channels.splice(0)) {
    port1.close()
    port2.close()
  }
})

describe('connectRpc', () => {
  it('calls every method of the exposed API with its arguments', async () => {
    const worker = createFakeWorker()
    const api = connect(worker.api)
    await expect(api.init({ site: 's', endpoint: 'e' })).resolves.toEqual(WORKER_STATUS)
    await expect(api.track({ event: 'Product Viewed' })).resolves.toEqual({ status: 'stored' })
    const response = await api.recommend({ scenario: 'similar', productId: 'sku-1', limit: 2 })
    expect(response.items).toHaveLength(2)
    await api.setConsent(true)
    await api.forget()
    await expect(api.status()).resolves.toMatchObject({ consent: true })
    expect(worker.names()).toEqual(['init', 'track', 'recommend', 'setConsent', 'forget', 'status'])
  })

  it('answers concurrent calls each with its own result', async () => {
    const api = connect({
      ...createFakeWorker().api,
      recommend: async ({ scenario }: { scenario: string }) => {
        await new Promise((resolve) => setTimeout(resolve, scenario === 'for-you' ? 20 : 0))
        return { scenario }
      },
    })
    const [slow, fast] = await Promise.all([
      api.recommend({ scenario: 'for-you' }),
      api.recommend({ scenario: 'trending' }),
    ])
    expect([slow.scenario, fast.scenario]).toEqual(['for-you', 'trending'])
  })

  it("rejects with the worker's error name and message", async () => {
    const api = connect({
      ...createFakeWorker().api,
      recommend: async () => {
        throw Object.assign(new Error('expected limit in 1..50, got 99'), {
          name: 'InvalidRequestError',
        })
      },
    })
    await expect(api.recommend({ scenario: 'for-you', limit: 99 })).rejects.toMatchObject({
      name: 'InvalidRequestError',
      message: 'expected limit in 1..50, got 99',
    })
  })
})
