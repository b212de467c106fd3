// Every TypeScript snippet of the READMEs type-checks against the built packages, as a user's
// code would: strict, as an ES module and as CommonJS (node16 resolution), and as CommonJS with
// the older node10 resolution; then as an ES module with the declaration files checked too
// (skipLibCheck: false), against ioredis 5 and 6. Names a snippet leaves to the reader (`id`,
// `app`) are declared in one ambient file.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, '.tmp', 'readme-snippets');
const readmes = [
  'README.md',
  ...readdirSync(join(root, 'packages')).map((p) => `packages/${p}/README.md`),
];

const AMBIENT = `
declare const id: string;
declare const config: import('mysql2').PoolOptions;
declare const host: string;
declare const port: number;
declare const buffer: Buffer;
declare const n: number;
declare const firstChunk: Buffer;
declare const pool: { query(sql: string): Promise<unknown> };
declare function onResponse(res: import('node:http').IncomingMessage): void;
declare function backendFor(envId: string | undefined): NodeJS.WritableStream;
declare function route(...args: unknown[]): void;
declare const cart: unknown;
declare const order: unknown;
declare const url: string;
declare const socket: import('node:net').Socket;
declare const app: {
  get(path: string, handler: (req: unknown, res: { send(body: string): void }) => void): void;
};
`;

interface Snippet {
  name: string;
  code: string;
}

function snippets(): Snippet[] {
  return readmes.flatMap((readme) => {
    const text = readFileSync(join(root, readme), 'utf8');
    return [...text.matchAll(/```(?:ts|typescript)\n([\s\S]*?)```/g)].map((m, i) => ({
      name: `${readme.replace(/[/.]/g, '_')}_${i + 1}`,
      code: m[1] as string,
    }));
  });
}

/** The snippet as a module: imports first, the rest in an async function for CommonJS. */
function asModule(code: string, cjs: boolean): string {
  const importPattern = /^import\s[\s\S]*?from\s+'[^']+';?.*$/gm;
  const imports = code.match(importPattern) ?? [];
  const body = code.replace(importPattern, '');
  const wrapped = cjs ? `export async function snippet(): Promise<void> {\n${body}\n}` : body;
  return `${imports.join('\n')}\n${wrapped}\nexport {};\n`;
}

function tsc(project: string): string {
  try {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', project], {
      encoding: 'utf8',
    });
    return '';
  } catch (err) {
    return (err as { stdout: string }).stdout;
  }
}

const COMMON = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: 'ES2022',
  lib: ['ES2023'],
  types: ['node'],
  typeRoots: [join(root, 'node_modules/@types')],
  esModuleInterop: true,
};

describe('README snippets', () => {
  const all = snippets();
  rmSync(dir, { recursive: true, force: true });
  for (const [kind, ext, options] of [
    ['esm', 'mts', { module: 'node16', moduleResolution: 'node16' }],
    ['cjs-node16', 'cts', { module: 'node16', moduleResolution: 'node16' }],
    ['cjs-node10', 'ts', { module: 'commonjs', moduleResolution: 'node10' }],
    // Our declaration files checked too, against ioredis 5 and 6 (a user's skipLibCheck: false;
    // mqtt.js's dependencies' own declarations need the DOM library then).
    [
      'esm-lib-check',
      'mts',
      { module: 'node16', moduleResolution: 'node16', skipLibCheck: false, lib: ['ES2023', 'DOM'] },
    ],
    [
      'esm-lib-check-ioredis-6',
      'mts',
      {
        module: 'node16',
        moduleResolution: 'node16',
        skipLibCheck: false,
        lib: ['ES2023', 'DOM'],
        paths: { ioredis: [join(root, 'node_modules/ioredis-6/built/index.d.ts')] },
      },
    ],
  ] as const) {
    it(`type-check strictly as ${kind}`, () => {
      const folder = join(dir, kind);
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, 'package.json'), JSON.stringify({ type: 'commonjs' }));
      writeFileSync(join(folder, 'ambient.d.ts'), AMBIENT);
      for (const s of all) {
        writeFileSync(join(folder, `${s.name}.${ext}`), asModule(s.code, kind !== 'esm'));
      }
      writeFileSync(
        join(folder, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: { ...COMMON, ...options, ignoreDeprecations: '5.0' },
          include: ['*.ts', '*.mts', '*.cts'],
        }),
      );
      expect(all.length).toBeGreaterThanOrEqual(20);
      expect(tsc(join(folder, 'tsconfig.json'))).toBe('');
    }, 60_000);
  }
});
