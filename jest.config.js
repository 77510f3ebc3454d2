/**
 * Tests run against a real Postgres and a real Temporal dev server, both started once by
 * test/setup/global-setup.ts and shared by every test file (each file gets its own database
 * schema state through its own ids, and its own task queue).
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // TypeBox 1.x, content-disposition 3, cookie 2 (under Fastify's plugins) and the OpenAPI validator
  // ship ES modules only;
  // Jest on Node 20 cannot require() them, so swc compiles them to CommonJS like our sources.
  transform: {
    '^.+\\.(ts|mjs|js)$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: [
    '/node_modules/(?!(typebox|content-disposition|cookie|@seriousme/openapi-schema-validator)/)',
  ],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  testTimeout: 60_000,
  maxWorkers: 2,
};
