// A resumable, verifiable download to a file: HTTP Range continues a partial file (FILE.part) left
// by an interrupted run, redirects are followed, HTTP(S)_PROXY is honoured (a CONNECT tunnel),
// the SHA-256 is computed on the way, and the file appears under its name only when complete (a
// rename), so an interrupted download never leaves a file that looks complete.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import tls from 'node:tls';

export interface DownloadOptions {
  onProgress?: (done: number, total: number | null) => void;
  /** Checks the finished file's SHA-256 (hex) before it gets its name; throw to refuse it. */
  verify?: (sha256: string) => void;
  /** Environment to read proxies from (default process.env). */
  env?: NodeJS.ProcessEnv;
  maxRedirects?: number;
}

export class DownloadError extends Error {
  constructor(
    message: string,
    readonly url: string,
    readonly network: boolean,
  ) {
    super(message);
  }
}

function proxyFor(url: URL, env: NodeJS.ProcessEnv): URL | null {
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (noProxy.some((h) => h === '*' || url.hostname === h || url.hostname.endsWith(h.startsWith('.') ? h : `.${h}`))) return null;
  const raw = url.protocol === 'https:' ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  return raw ? new URL(raw.includes('://') ? raw : `http://${raw}`) : null;
}

/** A socket to url's host through the proxy's CONNECT tunnel (TLS on top for https). */
function tunnel(url: URL, proxy: URL): Promise<Socket> {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return new Promise((resolve, reject) => {
    const auth = proxy.username
      ? { 'Proxy-Authorization': `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}` }
      : {};
    const req = http.request({
      host: proxy.hostname,
      port: proxy.port || 80,
      method: 'CONNECT',
      path: `${url.hostname}:${port}`,
      headers: { host: `${url.hostname}:${port}`, ...auth },
    });
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new DownloadError(`proxy ${proxy.host} refused the tunnel to ${url.host} (HTTP ${res.statusCode})`, url.href, true));
        return;
      }
      resolve(url.protocol === 'https:' ? tls.connect({ socket, servername: url.hostname }) : socket);
    });
    req.once('error', (err) => reject(new DownloadError(`proxy ${proxy.host}: ${err.message}`, url.href, true)));
    req.end();
  });
}

async function get(url: URL, headers: Record<string, string>, env: NodeJS.ProcessEnv): Promise<http.IncomingMessage> {
  const proxy = proxyFor(url, env);
  const socket = proxy ? await tunnel(url, proxy) : undefined;
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.get(url, { headers, ...(socket ? { createConnection: () => socket } : {}) }, resolve);
    req.once('error', (err) => reject(new DownloadError(`${url.href}: ${err.message}`, url.href, true)));
  });
}

/** Feeds a file's bytes to `hash` (a resumed download hashes what it already has first). */
export function hashFileInto(path: string, hash: Hash): Promise<void> {
  return new Promise((resolve, reject) => {
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve())
      .on('error', reject);
  });
}

/** Downloads `url` to `dest` (resuming DEST.part when present); returns the file's SHA-256. */
export async function download(urlText: string, dest: string, opts: DownloadOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const part = `${dest}.part`;
  let url = new URL(urlText);
  for (let redirects = 0; ; redirects++) {
    const have = existsSync(part) ? statSync(part).size : 0;
    const res = await get(url, have > 0 ? { range: `bytes=${have}-` } : {}, env);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (redirects >= (opts.maxRedirects ?? 5)) throw new DownloadError(`${urlText}: too many redirects`, urlText, false);
      url = new URL(res.headers.location, url);
      continue;
    }
    if (status === 416 && have > 0) {
      // The partial file is already whole (or longer than the file): start over to be sure.
      res.resume();
      rmSync(part, { force: true });
      continue;
    }
    if (status !== 200 && status !== 206) {
      res.resume();
      throw new DownloadError(`${url.href}: HTTP ${status}`, url.href, false);
    }
    const resumed = status === 206 && have > 0;
    if (!resumed && have > 0) rmSync(part, { force: true });
    const hash = createHash('sha256');
    if (resumed) await hashFileInto(part, hash);
    const range = /\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''));
    const total = range ? Number(range[1]) : res.headers['content-length'] !== undefined ? (resumed ? have : 0) + Number(res.headers['content-length']) : null;
    let done = resumed ? have : 0;
    opts.onProgress?.(done, total);
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(part, { flags: resumed ? 'a' : 'w' });
      let failed = false;
      const fail = (err: Error, fromFile = false): void => {
        if (failed) return;
        failed = true;
        res.destroy();
        const wrapped =
          err instanceof DownloadError
            ? err
            : new DownloadError(`${url.href}: ${err.message} (the part downloaded so far is kept in ${part}; run again to resume)`, url.href, true);
        // Keep what arrived: flush it to the partial file, so the next run resumes from there.
        if (fromFile) {
          out.destroy();
          reject(wrapped);
        } else out.end(() => reject(wrapped));
      };
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        done += chunk.length;
        opts.onProgress?.(done, total);
      });
      res.once('aborted', () => fail(new Error('connection closed before the end')));
      res.once('error', fail);
      out.once('error', (err) => fail(err, true));
      res.once('end', () => {
        if (total !== null && done < total) return fail(new Error(`connection closed after ${done} of ${total} bytes`));
        if (!failed) out.end(() => resolve());
      });
      res.pipe(out, { end: false });
    });
    const sha256 = hash.digest('hex');
    try {
      opts.verify?.(sha256);
    } catch (err) {
      rmSync(part, { force: true });
      throw err;
    }
    renameSync(part, dest);
    return sha256;
  }
}
