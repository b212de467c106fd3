// Helpers shared by the benchmarks: measuring with mitata and printing ratio tables.
import { bench, run } from 'mitata';

/** Runs `cases` ({ name: fn }) in one mitata run; returns Map name -> average ns per call. */
export async function measure(cases) {
  for (const [name, fn] of Object.entries(cases)) bench(name, fn);
  const { benchmarks } = await run({ format: 'quiet', throw: true });
  return new Map(benchmarks.map((b) => [b.alias, b.runs[0].stats.avg]));
}

/** Prints rows (arrays of cells) under a header, columns padded to their widest cell. */
export function table(title, header, rows) {
  const all = [header, ...rows].map((r) => r.map(String));
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n${title}\n${line(all[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const r of all.slice(1)) console.log(line(r));
}

export const fmtOps = (opsPerSec) => Math.round(opsPerSec).toLocaleString('en-US');
export const fmtRatio = (x) => `${x.toFixed(2)}x`;
