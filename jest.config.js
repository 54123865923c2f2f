/** @type {import('jest').Config} */
module.exports = {
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: {
    // tsconfig's isolatedModules makes ts-jest transpile only (about twice as fast);
    // `tsc --noEmit` is the type check.
    "^.+\\.ts$": ["ts-jest", {}],
  },
  testEnvironment: "node",
  // Pulumi keeps its runtime state on globalThis; Jest 30 would otherwise warn on cleanup.
  testEnvironmentOptions: { globalsCleanup: "off" },
  // The containerd and buildah e2e tests start real processes.
  testTimeout: 60000,
  modulePathIgnorePatterns: ["<rootDir>/registry-server/"],
};
