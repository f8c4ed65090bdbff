// Official pretrained weights by name, kept in the cache: `hardneg weights fetch NAME` downloads
// (resumably, verified), and `--set model.weights=NAME` finds the cached file. A file put in the
// cache by hand (a machine without network) is verified the same way.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../cache.ts';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic_write.ts';
import { DownloadError, download, hashFileInto } from './download.ts';
import { isWeightsName, weightsEntry, type WeightsEntry } from './registry.ts';

export interface FetchOptions {
  /** Folder for the weights (default: the cache's weights/ folder). */
  dir?: string;
  onProgress?: (done: number, total: number | null) => void;
  env?: NodeJS.ProcessEnv;
}

export interface FetchedWeights {
  entry: WeightsEntry;
  path: string;
  sha256: string;
  /** False when the file was already there (and verified). */
  downloaded: boolean;
}

export function weightsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HARDNEG_WEIGHTS_DIR && env.HARDNEG_WEIGHTS_DIR.length > 0 ? env.HARDNEG_WEIGHTS_DIR : join(cacheDir(), 'weights');
}

/** Where a name's file is fetched from: its official URL, or HARDNEG_WEIGHTS_MIRROR + file name. */
export function weightsUrl(entry: WeightsEntry, env: NodeJS.ProcessEnv = process.env): string {
  const mirror = env.HARDNEG_WEIGHTS_MIRROR;
  return mirror ? `${mirror.replace(/\/+$/, '')}/${entry.file}` : entry.url;
}

const recordPath = (dir: string): string => join(dir, 'sha256.json');

function records(dir: string): Record<string, string> {
  try {
    return JSON.parse(readFileSync(recordPath(dir), 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  await hashFileInto(path, h);
  return h.digest('hex');
}

/** Throws unless `sha256` is what the publisher gives, or what was recorded at the first download. */
function checkHash(entry: WeightsEntry, dir: string, sha256: string, what: string): void {
  if (entry.sha256Prefix) {
    if (!sha256.startsWith(entry.sha256Prefix))
      throw new UserError(
        `${what}: SHA-256 ${sha256.slice(0, 16)}… does not start with ${entry.sha256Prefix}, the prefix ${entry.url} is published with: not the official ${entry.name} weights (damaged or replaced)`,
        1,
      );
    return;
  }
  const known = records(dir)[entry.file];
  if (known && known !== sha256)
    throw new UserError(
      `${what}: SHA-256 ${sha256.slice(0, 16)}… differs from ${known.slice(0, 16)}…, recorded when it was first downloaded (${recordPath(dir)}): damaged or replaced`,
      1,
    );
}

function record(entry: WeightsEntry, dir: string, sha256: string): void {
  if (entry.sha256Prefix) return;
  const all = records(dir);
  if (all[entry.file] === sha256) return;
  all[entry.file] = sha256;
  writeFileAtomic(recordPath(dir), `${JSON.stringify(all, null, 2)}\n`);
}

/** The weights' file in the cache, verified; downloaded first when it is not there. */
export async function fetchWeights(name: string, opts: FetchOptions = {}): Promise<FetchedWeights> {
  const entry = weightsEntry(name);
  const env = opts.env ?? process.env;
  const dir = opts.dir ?? weightsDir(env);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, entry.file);
  if (existsSync(path)) {
    const sha256 = await fileSha256(path);
    checkHash(entry, dir, sha256, path);
    record(entry, dir, sha256);
    return { entry, path, sha256, downloaded: false };
  }
  const url = weightsUrl(entry, env);
  let sha256: string;
  try {
    sha256 = await download(url, path, { env, onProgress: opts.onProgress, verify: (h) => checkHash(entry, dir, h, url) });
  } catch (err) {
    if (err instanceof DownloadError) {
      const why = err.network ? 'no connection' : 'the server refused';
      throw new UserError(
        `cannot download ${entry.name} from ${url} (${why}: ${err.message}); on a machine without network, download that file by hand and put it at ${path} (its SHA-256 is checked), or pass any copy with --set model.weights=FILE`,
        1,
      );
    }
    throw err;
  }
  record(entry, dir, sha256);
  return { entry, path, sha256, downloaded: true };
}

/**
 * The cached, verified file of a weights name, without downloading (for --set model.weights=NAME).
 * `setting` names where the name was given, for the message ('model.weights', '--weights').
 */
export async function cachedWeights(name: string, env: NodeJS.ProcessEnv = process.env, setting = 'model.weights'): Promise<string> {
  const entry = weightsEntry(name);
  const dir = weightsDir(env);
  const path = join(dir, entry.file);
  if (!existsSync(path)) throw new UserError(`${setting} ${name}: not in the cache yet (${path}); run 'npx hardneg weights fetch ${name}' first`);
  checkHash(entry, dir, await fileSha256(path), path);
  return path;
}

/** Where a weights setting and its backbone were given, for messages. */
export interface WeightsSettings {
  weights: string;
  backbone: string;
}

/** The training configuration's keys. */
export const CONFIG_SETTINGS: WeightsSettings = { weights: 'model.weights', backbone: 'model.backbone' };

/**
 * A weights setting as a file: a registry name (hardneg weights list) resolves to its cached,
 * verified file, when it is for `backbone`; anything else is a path and is returned as it is.
 */
export async function resolveWeights(
  weights: string,
  backbone: string,
  settings: WeightsSettings = CONFIG_SETTINGS,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (!isWeightsName(weights)) return weights;
  const entry = weightsEntry(weights);
  if (entry.backbone !== backbone)
    throw new UserError(`${settings.weights} ${weights}: these are ${entry.backbone} weights, but ${settings.backbone} is ${backbone}`);
  return cachedWeights(weights, env, settings.weights);
}
