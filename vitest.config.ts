import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    // tfjs-core's ESM build imports its gradient configs without file extensions, which Node's
    // resolver refuses; inlining lets Vite resolve them (see BRIEF: register_all_gradients).
    server: { deps: { inline: [/@tensorflow\//] } },
  },
})
