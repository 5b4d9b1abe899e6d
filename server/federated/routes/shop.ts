// What the shop's systems call (PROTOCOL.md P25), mounted under /v1/admin behind the admin check
// by index.ts:
//   PUT  /v1/admin/catalogue  catalogue JSON: publish it with rebuilt pools (P25)
//   PUT  /v1/admin/rules      rules JSON: publish them (P25)
//   PUT  /v1/admin/experiments  the A/B experiments devices apply (P30): publish them
// Each publishes a version on the current one; the job thread checks and parses the body.
import { Hono } from 'hono'
import type { Jobs } from '../../jobs/jobs'
import { requireJobs, shopUploadBody } from './guards'
import { refuse } from '../../http-errors'
import { SHOP_CHANGE_KINDS } from '../catalogue-release'

export interface ShopDeps {
  /** The job thread (createFederation starts it): shop changes are published there. */
  jobs?: Jobs
}

export function shopRoutes(deps: ShopDeps): Hono {
  const shop = new Hono()
  for (const kind of SHOP_CHANGE_KINDS) {
    shop.put(`/${kind}`, shopUploadBody, async (c) => {
      const result = await requireJobs(deps).putShopChange(kind, await c.req.arrayBuffer())
      if (result.status === 'refused') refuse(result.code, result.message)
      if (result.status === 'conflict') {
        refuse('E_CONFLICT', 'another version was published at the same moment; send it again')
      }
      const { status: _, ...published } = result
      return c.json(published, 201)
    })
  }
  return shop
}
