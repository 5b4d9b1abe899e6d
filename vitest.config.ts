import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    // tfjs-core's ESM build imports its gradient configs without file extensions, which Node's
    // resolver refuses; inlining lets Vite resolve them (its entry point registers no gradients,
    // and register_all_gradients would pull in every kernel's; model/gradients.ts registers its own).
    server: { deps: { inline: [/@tensorflow\//] } },
  },
})
