// Adds lock file entries for platform-specific optional dependencies that `npm install` left out.
//
// The npm registry this project's machines reach serves only some versions of some platform
// packages (for example rollup's linux-x64 build but not its darwin build). `npm install` skips
// the ones it cannot fetch and leaves them out of package-lock.json, and `npm ci` then refuses the
// lock file as out of sync. An entry with `os` / `cpu` / `libc` lets `npm ci` accept the lock file
// and skip the package on any other platform. Run after `npm install`: `npm run lock:complete`.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const LOCK = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(LOCK, 'utf8'));
const packages = lock.packages;

const OSES = [
  'aix',
  'android',
  'darwin',
  'freebsd',
  'linux',
  'netbsd',
  'openbsd',
  'openharmony',
  'sunos',
  'win32',
];
const CPUS = ['arm64', 'arm', 'ia32', 'loong64', 'mips64el', 'ppc64', 'riscv64', 's390x', 'x64'];

/** Platform of a package from its name, as rollup, esbuild and biome name theirs. */
function inferPlatform(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.find((p) => OSES.includes(p));
  const cpu = parts.find((p) => CPUS.includes(p));
  if (!os || !cpu) return undefined;
  const meta = { os: [os], cpu: [cpu] };
  if (os === 'linux') meta.libc = [parts.some((p) => p.startsWith('musl')) ? 'musl' : 'glibc'];
  return meta;
}

function registryMetadata(name, version) {
  try {
    const out = execFileSync(
      'npm',
      ['view', `${name}@${version}`, 'os', 'cpu', 'libc', 'license', 'engines', '--json'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    return out.trim() ? JSON.parse(out) : undefined;
  } catch {
    return undefined;
  }
}

let added = 0;
for (const [location, pkg] of Object.entries({ ...packages })) {
  for (const [name, range] of Object.entries(pkg.optionalDependencies ?? {})) {
    const nested = `${location ? `${location}/` : ''}node_modules/${name}`;
    if (packages[nested] || packages[`node_modules/${name}`]) continue;
    const version = range.replace(/^[\^~=]/, '');
    const meta = registryMetadata(name, version) ?? inferPlatform(name);
    if (!meta?.os || !meta?.cpu) {
      console.error(`cannot tell the platform of ${name}@${version}; add its entry by hand`);
      process.exitCode = 1;
      continue;
    }
    const entry = { version, optional: true, os: meta.os, cpu: meta.cpu };
    if (meta.libc) entry.libc = meta.libc;
    if (meta.license) entry.license = meta.license;
    if (meta.engines) entry.engines = meta.engines;
    if (pkg.dev) entry.dev = true;
    packages[`node_modules/${name}`] = entry;
    added++;
    console.log(
      `added ${name}@${version} (${entry.os}/${entry.cpu}${entry.libc ? `/${entry.libc}` : ''})`,
    );
  }
}
lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`${added} entries added`);
