// Folder boundaries are lint rules, not review comments (see ../shared/STYLE.md "Boundaries").
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const platformLibraries = [
  {
    group: ['@tensorflow/*'],
    message: 'tfjs lives in client/worker only; keep this folder platform-free.',
  },
  { group: ['idb', 'fake-indexeddb'], message: 'IndexedDB lives in client/worker/storage only.' },
  { group: ['hono', 'hono/*'], message: 'hono belongs to server/.' },
]
const nodeModules = {
  group: ['node:*', 'fs', 'path', 'os', 'zlib', 'url', 'module'],
  message: 'This folder runs in browsers too: no Node built-ins.',
}

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.cache/', 'models/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
  {
    files: ['shared/**/*.ts'],
    ignores: ['shared/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...platformLibraries,
            nodeModules,
            {
              group: ['../client/*', '../server/*', '../train/*'],
              message: 'shared/ depends on nothing in the project.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['client/worker/**/*.ts'],
    ignores: ['client/worker/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            nodeModules,
            { group: ['hono', 'hono/*'], message: 'hono belongs to server/.' },
            {
              group: ['**/server/*', '**/train/*'],
              message: 'The worker ships to shoppers: no server or trainer code.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['client/loader/**/*.ts', 'client/demo/**/*.ts'],
    ignores: ['client/loader/**/*.test.ts', 'client/loader/test-fakes.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            ...platformLibraries,
            nodeModules,
            {
              group: ['comlink'],
              message:
                "The tag speaks comlink's protocol through worker-rpc.ts: wrap alone is 1.8 KB gzip.",
            },
            {
              group: ['**/worker/**'],
              allowTypeImports: true,
              message:
                'The page imports the worker API as a type only: no tfjs or idb in the page bundle.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['server/**/*.ts'],
    // server/evaluation/ runs the model to score candidate versions (P26): the one place the
    // server may use tfjs and the trainer's evaluation protocol. Aggregation never does.
    ignores: ['server/**/*.test.ts', 'server/evaluation/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@tensorflow/*'],
              message: 'Aggregation is plain Float32Array math: no tfjs on the server.',
            },
            { group: ['idb'], message: 'IndexedDB is a browser store.' },
            {
              group: ['**/client/*'],
              message: 'The server talks to clients through shared/ wire types only.',
            },
          ],
        },
      ],
    },
  },
)
