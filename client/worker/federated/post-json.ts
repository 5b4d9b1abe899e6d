// A JSON POST to the federation routes (/v1/… on the manifest's origin), as the uploader and the
// client-id registration send them: the status, the JSON answer when it is an object, and a
// reason for status lines. Status 0 when no answer came (offline, server down).

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
