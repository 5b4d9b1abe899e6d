// Folder boundaries are lint rules, not review comments: imports only go down, shared/ → model/ →
// client/worker/, train/, server/ → bench/, scripts/, test/ (README, "Code map").
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const platformLibraries = [
  {
    group: ['@tensorflow/*'],
    message: 'tfjs lives in model/ and client/worker/ only; keep this folder platform-free.',
  },
  { group: ['idb', 'fake-indexeddb'], message: 'IndexedDB lives in client/worker/storage only.' },
  { group: ['hono', 'hono/*'], message: 'hono belongs to server/.' },
]
const nodeModules = {
  group: ['node:*', 'fs', 'path', 'os', 'zlib', 'url', 'module'],
  message: 'This folder runs in browsers too: no Node built-ins.',
}

/** Import patterns for the project's top-level rooms, at any depth of `../`. */
function projectRooms(rooms) {
  return rooms.flatMap((room) => [`../${room}/*`, `**/../${room}/*`, `../${room}`, `**/../${room}`])
}
const serverRooms = [
  { group: ['idb'], message: 'IndexedDB is a browser store.' },
  {
    group: projectRooms(['client', 'train', 'bench', 'scripts']),
    message:
      'The server talks to clients through shared/ wire types only, and runs no trainer code.',
  },
]

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
              group: projectRooms(['model', 'client', 'server', 'train', 'bench', 'scripts']),
              message: 'shared/ is the bottom room: it depends on nothing in the project.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['model/**/*.ts'],
    ignores: ['model/**/*.test.ts', 'model/node-backend.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            nodeModules,
            {
              group: ['idb', 'fake-indexeddb'],
              message: 'IndexedDB lives in client/worker/storage only.',
            },
            { group: ['hono', 'hono/*'], message: 'hono belongs to server/.' },
            {
              group: projectRooms(['client', 'server', 'train', 'bench', 'scripts']),
              message:
                'model/ is imported by the worker, the trainer and the server: it imports only shared/.',
            },
          ],
        },
      ],
    },
  },
  {
    // The one Node file of model/: how the trainer, the server's evaluation and the benchmarks
    // start tfjs in Node. The worker never imports it (see the worker's rule).
    files: ['model/node-backend.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: projectRooms(['client', 'server', 'train', 'bench', 'scripts']),
              message: 'model/ imports only shared/.',
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
              group: projectRooms(['server', 'train', 'bench', 'scripts']),
              message: 'The worker ships to shoppers: no server, trainer or benchmark code.',
            },
            {
              group: ['**/model/node-backend'],
              message:
                'The worker picks its backend in backend-probe.ts; node-backend is Node only.',
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
    ignores: ['server/**/*.test.ts', 'server/evaluation/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@tensorflow/*', ...projectRooms(['model'])],
              message:
                'Aggregation is plain Float32Array math: no tfjs or model on the server outside server/evaluation/.',
            },
            ...serverRooms,
          ],
        },
      ],
    },
  },
  {
    // server/evaluation/ runs the model to score candidate versions (P26): the one part of the
    // server that imports model/ (and through it tfjs). It still reaches nothing above it.
    files: ['server/evaluation/**/*.ts'],
    ignores: ['server/evaluation/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: serverRooms }] },
  },
  {
    files: ['train/**/*.ts'],
    ignores: ['train/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['idb', 'fake-indexeddb'], message: 'IndexedDB is a browser store.' },
            { group: ['hono', 'hono/*'], message: 'hono belongs to server/.' },
            {
              group: projectRooms(['client', 'server', 'bench', 'scripts']),
              message:
                'The trainer builds models and artifacts from shared/ and model/; the simulation, which runs device and server code, lives in bench/sim/.',
            },
          ],
        },
      ],
    },
  },
)
