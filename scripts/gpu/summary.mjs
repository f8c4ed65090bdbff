/* global process, console */
// Writes gpu-summary.json for scripts/gpu/run.sh from the files its steps left: per step the
// command, exit code, seconds, the key numbers of its JSON output and, when it failed, the tail of
// its output. Runs on the carried node. Args: SUMMARY STEPS_DIR BACKEND CHECK ICD NVIDIA_SMI PACK_JSON SECONDS
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [summaryPath, stepsDir, backend, check, icd, smiPath, packJson, seconds] = process.argv.slice(2);
const read = (p) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
const jsonLines = (text) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });

/** The numbers worth reading at a glance, per step. */
const KEY = {
  adapter: (o) => o.at(-1) ?? null,
  doctor: (o) => {
    const d = o.at(-1);
    if (!d) return null;
    const cases = Array.isArray(d.cases) ? d.cases : [];
    return {
      engine: d.environment?.backend?.engine ?? null,
      ok: d.ok ?? null,
      cases: cases.length,
      passed: cases.filter((c) => c.ok).length,
      seconds: d.seconds,
    };
  },
  golden: (_o, text) => ({ pass: Number(/^# pass (\d+)$/m.exec(text)?.[1] ?? NaN), fail: Number(/^# fail (\d+)$/m.exec(text)?.[1] ?? NaN) }),
  bench: (o) => {
    const b = o.find((x) => x.case === 'iteration-cub');
    return b ? { median_ms: b.median_ms, min_ms: b.min_ms, runs: b.runs, peak_rss_mb: b.peak_rss_mb, backend: b.backend } : null;
  },
  train: (o) => {
    const last = o.at(-1);
    return last ? Object.fromEntries(Object.entries(last).filter(([, v]) => typeof v !== 'object' || v === null)) : null;
  },
};

const ORDER = ['adapter', 'doctor', 'golden', 'bench', 'train'];
const names = existsSync(stepsDir)
  ? [...new Set(readdirSync(stepsDir).map((f) => f.replace(/\.[a-z]+$/, '')))].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b))
  : [];
const steps = names.map((name) => {
  const [code, ms] = read(join(stepsDir, `${name}.rc`))
    .trim()
    .split(' ')
    .map(Number);
  const stdout = read(join(stepsDir, `${name}.out`));
  const stderr = read(join(stepsDir, `${name}.err`));
  let key;
  try {
    key = KEY[name]?.(jsonLines(stdout), stdout) ?? null;
  } catch (err) {
    key = { unreadable: String(err) };
  }
  const step = {
    name,
    command: read(join(stepsDir, `${name}.cmd`)).trim(),
    exit_code: code,
    seconds: Math.round(ms / 100) / 10,
    timed_out: code === 124 || code === 137,
    key,
  };
  if (code !== 0) step.error_tail = `${stdout}\n${stderr}`.trim().slice(-3000);
  return step;
});

const mode = check === '1' ? 'check' : 'run';
const problems = [];
if (backend === 'webgpu' && !icd) problems.push('no NVIDIA Vulkan ICD (nvidia_icd.json) found: Dawn has no NVIDIA driver to use');
for (const s of steps) if (s.exit_code !== 0) problems.push(`step ${s.name} exited ${s.exit_code}`);
const summary = {
  backend,
  mode,
  ok: problems.length === 0,
  problems,
  seconds: Number(seconds),
  node: process.version,
  node_path: process.execPath,
  pack: packJson && existsSync(packJson) ? JSON.parse(read(packJson)) : null,
  vulkan_icd: icd || null,
  nvidia_smi: read(smiPath).trim(),
  adapter: steps.find((s) => s.name === 'adapter')?.key ?? null,
  steps,
};
writeFileSync(summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
console.log(`gpu-summary: ${summaryPath} (${summary.ok ? 'ok' : problems.join('; ')})`);
process.exit(summary.ok ? 0 : 1);
