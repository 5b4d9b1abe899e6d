// POSTs to the federation routes (/v1/… on the manifest's origin) and the helper, as the uploader,
// the outcome reports and the client-id registration send them: a JSON one with its answer, a
// binary one with its status alone. Status 0 when no answer came (offline, server down).

export interface JsonAnswer {
  status: number
  body: Record<string, unknown> | null
  /** `HTTP 400 E_CLIENT`, or the network error. */
  reason: string
}

export async function postJson(
  fetchFn: typeof fetch,
  url: URL,
  payload: object,
): Promise<JsonAnswer> {
  try {
    const response = await fetchFn(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
    })
    const parsed: unknown = await response.json().catch(() => null)
    const body =
      typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : null
    const code = typeof body?.error === 'string' ? ` ${body.error}` : ''
    return { status: response.status, body, reason: `HTTP ${response.status}${code}` }
  } catch (error) {
    return { status: 0, body: null, reason: String(error) }
  }
}

/** A binary body (a share, an upload, a report), with an upload token when given: the status. */
export async function postBytes(
  fetchFn: typeof fetch,
  url: string | URL,
  body: Uint8Array,
  token?: string,
): Promise<number> {
  try {
    const response = await fetchFn(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: body as Uint8Array<ArrayBuffer>,
    })
    await response.body?.cancel()
    return response.status
  } catch {
    return 0
  }
}
