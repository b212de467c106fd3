import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Checks the built packages (dist/) as a user installs them: `npm test` builds first.
const root = fileURLToPath(new URL('..', import.meta.url));
// The published ones: @picop/cli-kit is private, bundled into the two commands.
const packages = readdirSync(`${root}packages`)
  .map((dir) => {
    const pkg = JSON.parse(readFileSync(`${root}packages/${dir}/package.json`, 'utf8'));
    return { dir, pkg };
  })
  .filter(({ pkg }) => pkg.private !== true);

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
}

describe('the release', () => {
  it('packs only what users need: the build, bin, README, LICENSE', () => {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--workspaces'], {
        cwd: root,
        encoding: 'utf8',
      }),
    ) as Array<{ name: string; files: Array<{ path: string }> }>;
    const published = packed.filter(({ name }) => name !== '@picop/cli-kit');
    expect(published).toHaveLength(packages.length);
    for (const { name, files } of published) {
      const tops = new Set(files.map((f) => f.path.split('/')[0]));
      expect([...tops].sort(), name).toEqual(
        expect.arrayContaining(['LICENSE', 'README.md', 'dist', 'package.json']),
      );
      for (const top of tops) {
        // haproxy/: picop-proxy's Lua action for HAProxy.
        expect(['LICENSE', 'README.md', 'dist', 'bin', 'haproxy', 'package.json'], name).toContain(
          top,
        );
      }
    }
  });

  it('has one version for every package, their links to each other included, and its changelog', () => {
    const version = packages[0]?.pkg.version as string;
    const names = new Set(packages.map(({ pkg }) => pkg.name as string));
    for (const { pkg } of packages) {
      expect(pkg.version, pkg.name).toBe(version);
      expect(pkg.publishConfig, pkg.name).toEqual({ access: 'public' });
      for (const [dep, range] of Object.entries(pkg.dependencies ?? {})) {
        if (names.has(dep)) expect(range, `${pkg.name} -> ${dep}`).toBe(version);
      }
    }
    expect(readFileSync(`${root}CHANGELOG.md`, 'utf8')).toMatch(new RegExp(`^## ${version}$`, 'm'));
  });
});

describe('published packages', () => {
  for (const { dir, pkg } of packages) {
    describe(pkg.name, () => {
      it('has what npm publish needs', () => {
        expect(pkg.license).toBe('Apache-2.0');
        expect(pkg.engines.node).toBe('>=20.19');
        expect(pkg.files).toContain('dist');
        expect(pkg.exports['.'].import.types).toMatch(/\.d\.mts$/);
        expect(pkg.exports['.'].require.types).toMatch(/\.d\.ts$/);
        expect(readFileSync(`${root}packages/${dir}/README.md`, 'utf8')).toContain('```');
        expect(pkg.files).toContain('LICENSE');
        expect(readFileSync(`${root}packages/${dir}/LICENSE`, 'utf8')).toBe(
          readFileSync(`${root}LICENSE`, 'utf8'),
        );
        if (pkg.name === '@picop/codec') expect(pkg.dependencies).toBeUndefined();
      });

      it('exports the same names to require() and import', () => {
        // A default export (`@picop/pg`'s, as pg's) is `default` in both; re-exporting a CommonJS
        // module's names (`@picop/bullmq`: BullMQ's) brings its `__esModule` into the ES module.
        const cjs = node([
          '-p',
          `Object.keys(require(${JSON.stringify(pkg.name)})).filter((k) => k !== 'default').sort().join()`,
        ]);
        const esm = node([
          '--input-type=module',
          '-e',
          `import * as m from ${JSON.stringify(pkg.name)}; console.log(Object.keys(m).filter((k) => !['default', 'module.exports', '__esModule'].includes(k)).sort().join())`,
        ]);
        expect(cjs.trim().length).toBeGreaterThan(0);
        expect(esm.trim()).toBe(cjs.trim());
      });

      // Libraries tell a client from an options object by its class name (bee-queue: 'Redis').
      it('keeps its exported classes’ names through the build', () => {
        const names = node([
          '-p',
          `Object.entries(require(${JSON.stringify(pkg.name)})).filter(([, v]) => typeof v === 'function' && /^class /.test(String(v))).map(([k, v]) => k + '=' + v.name).join()`,
        ]).trim();
        for (const pair of names.split(',').filter(Boolean)) {
          const [exported, name] = pair.split('=');
          expect(name, pkg.name).toBe(exported);
        }
      });
    });
  }
});
