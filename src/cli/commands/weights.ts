// `hardneg weights convert`: a PyTorch checkpoint (torch.save, zip or legacy format) to
// safetensors, without Python: every tensor under its state-dict name with its dtype and exact
// values. The pickle inside is read as data only (src/io/torch_pickle.ts), so converting a file
// from the internet never runs anything it names.
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { bytesPerElement, numel } from '../../io/host_tensor.ts';
import type { NonTensorEntry } from '../../io/pth.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import { sameFile } from '../../io/paths.ts';
import { readStateDict } from '../../io/state_dict_file.ts';
import { nameList } from '../../text.ts';
import { fetchWeights, weightsDir } from '../../weights/fetch.ts';
import { WEIGHTS_NAMES, listWeights } from '../../weights/registry.ts';
import { ProgressBar } from '../progress.ts';

const HELP = `usage: hardneg weights list [--json]
       hardneg weights fetch NAME [--dir DIR] [--json]
       hardneg weights convert IN.pth --out OUT.safetensors [--key NAME] [--strip-prefix P] [--json]

list: the official pretrained weights hardneg knows by name (the ones the official configurations
start from), with their URL, the backbone they are for, and whether they are in the cache.

fetch: downloads NAME into the cache ($XDG_CACHE_HOME/hardneg/weights, else
~/.cache/hardneg/weights; --dir DIR or HARDNEG_WEIGHTS_DIR elsewhere), with a progress bar,
resuming an interrupted download (HTTP Range), honouring HTTPS_PROXY/HTTP_PROXY/NO_PROXY, checking
the SHA-256 (torchvision's published prefix; DINO's is recorded at the first download and checked
after), and giving the file its name only when it is complete and verified. Then
--set model.weights=NAME uses the cached file. Without network the message names the URL and where
to put a file downloaded by hand. HARDNEG_WEIGHTS_MIRROR=URL fetches FILE from URL/FILE instead.

convert:
Converts a PyTorch checkpoint to safetensors, without Python. IN is a torch.save file in either
format (the zip format of PyTorch >= 1.6, or the legacy one); a safetensors IN works too, to select
or rename entries. Every tensor is written under its state-dict name (nested dicts joined with '.',
as PyTorch names modules), its dtype kept (float32, float64, float16, bfloat16, int64, int32, uint8,
bool) and its values bit for bit; views (transposed, sliced) are written as the tensors they are.
Entries that are not tensors (epoch, args, optimizer settings) are listed on stderr, not written.

The pickle inside a .pth is read as data only: a file that names any function other than
PyTorch's tensor rebuilders (os.system, builtins.eval, …) is refused, and nothing in it is run.

options:
  --out FILE           the safetensors file to write (atomically; never the input)
  --key NAME           descend into this entry first: DINO's full checkpoints hold 'teacher' and
                         'student'; a dotted path (state.model) reaches nested entries
  --strip-prefix P     keep only the tensors whose names start with P, without it
                         (e.g. --key teacher --strip-prefix backbone.)
  --json               print one JSON object: input, output, format (zip, legacy, safetensors),
                         tensors ([{name, dtype, shape}]), bytes, non_tensors ([{name, type,
                         value}]), outside_prefix (tensors left out by --strip-prefix)

`;

const OPTIONS = {
  out: { type: 'string' },
  key: { type: 'string' },
  'strip-prefix': { type: 'string' },
  json: { type: 'boolean' },
} as const;

function showValue(e: NonTensorEntry): string {
  const text = JSON.stringify(e.value) ?? '';
  const short = text.length > 100 ? `${text.slice(0, 99)}…` : text;
  return `  ${e.name}: ${e.type}${short === '' ? '' : ` ${short}`}`;
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

async function convert(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  if (positionals.length === 0) throw new UserError('needs the checkpoint to convert: hardneg weights convert IN.pth --out OUT.safetensors');
  if (positionals.length > 1) throw new UserError(`takes one checkpoint, got ${positionals.length}: ${positionals.join(', ')}`);
  const input = positionals[0] as string;
  const out = values.out;
  if (out === undefined) throw new UserError('needs --out OUT.safetensors, the file to write');
  if (!existsSync(input)) throw new UserError(`${input}: file not found`);
  if (statSync(input).isDirectory()) throw new UserError(`${input}: is a folder, expected a checkpoint file`);
  if (sameFile(input, out)) throw new UserError(`--out ${out} is the input file; write the safetensors elsewhere`);
  if (existsSync(out) && statSync(out).isDirectory()) throw new UserError(`--out ${out}: is a folder, expected a file name`);
  if (values.key === '') throw new UserError('--key: expected an entry name, got an empty string');

  const read = readStateDict(input, { key: values.key, stripPrefix: values['strip-prefix'] });
  if (read.tensors.size === 0) {
    const where = values.key === undefined ? '' : ` under '${values.key}'`;
    const entries =
      read.nonTensors.length > 0
        ? ` (its entries: ${read.nonTensors
            .map((e) => e.name)
            .slice(0, 8)
            .join(', ')})`
        : '';
    throw new UserError(`${input}: holds no tensors${where}${entries}`);
  }
  writeSafetensors(out, read.tensors, { format: 'pt' });

  const tensors = [...read.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
  const bytes = [...read.tensors.values()].reduce((acc, t) => acc + numel(t.shape) * bytesPerElement(t.dtype), 0);
  if (read.nonTensors.length > 0) {
    console.error(`not written (not tensors):\n${read.nonTensors.map(showValue).join('\n')}`);
  }
  if (values.json) {
    const report = {
      input,
      output: out,
      format: read.format,
      tensors,
      bytes,
      non_tensors: read.nonTensors,
      outside_prefix: read.outsidePrefix,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const byDtype = new Map<string, number>();
    for (const t of tensors) byDtype.set(t.dtype, (byDtype.get(t.dtype) ?? 0) + 1);
    const mix = [...byDtype].map(([d, n]) => `${d} ×${n}`).join(', ');
    const left = read.outsidePrefix > 0 ? `; ${read.outsidePrefix} outside --strip-prefix left out` : '';
    console.log(`wrote ${tensors.length} tensors (${humanBytes(bytes)}: ${mix}) from ${basename(input)} (${read.format} format) to ${out}${left}`);
  }
  return 0;
}

function list(argv: string[]): number {
  const { values, positionals } = parseFlags({ args: argv, options: { json: { type: 'boolean' } }, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UserError(`weights list takes no argument, got '${positionals[0]}'`);
  const dir = weightsDir();
  const rows = listWeights().map((e) => ({
    name: e.name,
    backbone: e.backbone,
    url: e.url,
    sha256_prefix: e.sha256Prefix ?? null,
    cached: existsSync(join(dir, e.file)) ? join(dir, e.file) : null,
    description: e.description,
  }));
  if (values.json) console.log(JSON.stringify({ dir, weights: rows }));
  else {
    console.log(`weights known by name (cache: ${dir}):`);
    for (const r of rows) console.log(`  ${r.name.padEnd(12)} ${r.cached ? 'cached ' : '       '} ${r.description}\n  ${''.padEnd(20)}${r.url}`);
  }
  return 0;
}

async function fetch(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args: argv,
    options: { dir: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UserError(`weights fetch takes one name (${nameList(WEIGHTS_NAMES)}), got ${positionals.length}`);
  const name = positionals[0] as string;
  const bar = new ProgressBar(`fetching ${name}`, Boolean(values.json));
  const r = await fetchWeights(name, {
    dir: values.dir,
    onProgress: (done, total) => bar.update(Math.round(done / 1e6), Math.round((total ?? done) / 1e6), 'MB'),
  });
  bar.done();
  if (values.json) console.log(JSON.stringify({ name, path: r.path, sha256: r.sha256, downloaded: r.downloaded }));
  else
    console.log(
      `${r.downloaded ? 'downloaded' : 'already in the cache'}: ${r.path} (sha256 ${r.sha256.slice(0, 16)}…); use it with --set model.weights=${name}`,
    );
  return 0;
}

export const command: Command = {
  summary: 'official pretrained weights by name (list, fetch) and PyTorch checkpoints to safetensors (convert)',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'convert') return convert(rest);
    if (sub === 'list') return list(rest);
    if (sub === 'fetch') return fetch(rest);
    if (sub === undefined) throw new UserError("expected a subcommand: list, fetch or convert; see 'hardneg weights --help'");
    throw new UserError(`unknown subcommand '${sub}'; expected list, fetch or convert (see 'hardneg weights --help')`);
  },
};
