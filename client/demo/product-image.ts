// Deterministic product pictures: a hue per category, a shape per product, the product's
// initials. No image files to ship, and the same product always looks the same.

function hash(text: string): number {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 16777619)
  }
  return h >>> 0
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** An inline SVG (as markup) for a product; `size` in CSS pixels. */
export function drawProductImage(name: string, category: string, size = 160): string {
  const hue = hash(category) % 360
  const h = hash(name)
  const shape = h % 3
  const accent = `hsl(${(hue + 40 + (h % 60)) % 360} 70% 45%)`
  const initials = name
    .split(/\s+/)
    .slice(-2)
    .map((w) => w[0] ?? '')
    .join('')
    .toUpperCase()
  const figure =
    shape === 0
      ? `<circle cx="50" cy="46" r="26" fill="${accent}"/>`
      : shape === 1
        ? `<rect x="24" y="20" width="52" height="52" rx="10" fill="${accent}"/>`
        : `<path d="M50 16 L82 74 L18 74 Z" fill="${accent}"/>`
  return (
    `<svg class="product-image" viewBox="0 0 100 100" width="${size}" height="${size}" role="img" ` +
    `aria-label="${escapeXml(name)}"><rect width="100" height="100" fill="hsl(${hue} 60% 92%)"/>` +
    `${figure}<text x="50" y="92" text-anchor="middle" font-size="12" font-family="sans-serif" ` +
    `fill="hsl(${hue} 40% 25%)">${escapeXml(initials)}</text></svg>`
  )
}
