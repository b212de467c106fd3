import { defineConfig } from 'tsup';

// Shared by every package: run from a package folder, `tsup` finds this file by walking up.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['cjs', 'esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
  tsconfig: 'tsconfig.json',
});
