// Official weights by name, fetched from a local HTTP server the test starts (never the network):
// resumed after a dropped connection (HTTP Range), verified against the published SHA-256 prefix
// or the hash recorded at the first download, never left looking complete when interrupted or
// wrong, through a CONNECT proxy when HTTP_PROXY says so, and with a message naming the URL and
// the place for a hand-downloaded file when there is no network.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random } from '../src/engine/random.ts';
import { fetchWeights, cachedWeights } from '../src/weights/fetch.ts';
import { weightsEntry } from '../src/weights/registry.ts';
import { UserError } from '../src/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-weights-'));
const rng = new Random(11, 1);
const BODY = Buffer.from(Array.from({ length: 300_000 }, () => rng.int(256)));
const DINO = weightsEntry('dino-vits16').file;
const RESNET = weightsEntry('resnet50').file;

interface Seen {
  path: string;
  range: string | undefined;
}
const seen: Seen[] = [];
let dropNext = 0;
let server: http.Server;
let proxy: http.Server;
let proxied = 0;
let base = '';
let proxyUrl = '';

before(async () => {
  server = http.createServer((req, res) => {
    const path = req.url ?? '';
    seen.push({ path, range: req.headers.range });
    if (path === `/moved/${DINO}`) {
      res.writeHead(302, { location: `/files/${DINO}` });
      res.end();
      return;
    }
    if (path !== `/files/${DINO}` && path !== `/files/${RESNET}`) {
      res.writeHead(404);
      res.end('not here');
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const body = BODY.subarray(start);
    res.writeHead(m ? 206 : 200, { 'content-length': body.length, ...(m ? { 'content-range': `bytes ${start}-${BODY.length - 1}/${BODY.length}` } : {}) });
    if (dropNext > 0) {
      // Send part of the body, then drop the connection.
      const n = dropNext;
      dropNext = 0;
      res.write(body.subarray(0, n), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  });
  proxy = http.createServer();
  proxy.on('connect', (req, client: net.Socket, head: Buffer) => {
    proxied++;
    const [host, port] = String(req.url).split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
});

after(async () => {
  await new Promise((r) => server.close(r));
  await new Promise((r) => proxy.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

const env = (dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HARDNEG_WEIGHTS_MIRROR: `${base}/files`,
  HARDNEG_WEIGHTS_DIR: dir,
  ...extra,
});
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('a dropped connection leaves only a .part; the next fetch resumes it with Range and records the hash', async () => {
  const dir = join(tmp, 'resume');
  dropNext = 100_000;
  seen.length = 0;
  await assert.rejects(
    fetchWeights('dino-vits16', { env: env(dir) }),
    (e: unknown) => e instanceof UserError && /cannot download dino-vits16 from .*run again to resume/.test(e.message),
  );
  assert.ok(!existsSync(join(dir, DINO)), 'no file that looks complete');
  const partSize = readFileSync(join(dir, `${DINO}.part`)).length;
  assert.ok(partSize > 0 && partSize < BODY.length, `partial file of ${partSize} bytes`);
  const progress: number[] = [];
  const r = await fetchWeights('dino-vits16', { env: env(dir), onProgress: (done) => progress.push(done) });
  assert.equal(r.downloaded, true);
  assert.equal(seen.at(-1)?.range, `bytes=${partSize}-`, 'resumed where it stopped');
  assert.deepEqual(readFileSync(r.path), BODY);
  assert.equal(r.sha256, sha(BODY));
  assert.equal(progress[0], partSize);
  assert.equal(progress.at(-1), BODY.length);
  assert.equal(JSON.parse(readFileSync(join(dir, 'sha256.json'), 'utf8'))[DINO], sha(BODY));
  assert.ok(!existsSync(join(dir, `${DINO}.part`)));
  // Fetched again: verified in place, not downloaded.
  const again = await fetchWeights('dino-vits16', { env: env(dir) });
  assert.equal(again.downloaded, false);
  assert.equal(await cachedWeights('dino-vits16', env(dir)), r.path);
  // A changed file no longer matches the hash recorded at the first download.
  const damaged = Buffer.from(BODY);
  damaged[5] = (damaged[5] as number) ^ 1;
  writeFileSync(r.path, damaged);
  await assert.rejects(fetchWeights('dino-vits16', { env: env(dir) }), /differs from .* recorded when it was first downloaded/);
  await assert.rejects(cachedWeights('dino-vits16', env(dir)), /differs from/);
});

test('a file whose SHA-256 does not carry the published prefix is refused and not kept', async () => {
  const dir = join(tmp, 'prefix');
  await assert.rejects(
    fetchWeights('resnet50', { env: env(dir) }),
    (e: unknown) => e instanceof UserError && e.exitCode === 1 && /does not start with 0676ba61/.test(e.message),
  );
  assert.ok(!existsSync(join(dir, RESNET)) && !existsSync(join(dir, `${RESNET}.part`)), 'nothing left');
});

test('redirects are followed; a missing file is an error naming the URL', async () => {
  const dir = join(tmp, 'moved');
  const r = await fetchWeights('dino-vits16', { env: env(dir, { HARDNEG_WEIGHTS_MIRROR: `${base}/moved` }) });
  assert.deepEqual(readFileSync(r.path), BODY);
  await assert.rejects(
    fetchWeights('dino-vits16', { env: env(join(tmp, 'missing'), { HARDNEG_WEIGHTS_MIRROR: `${base}/nowhere` }) }),
    /from http:\/\/127\.0\.0\.1:\d+\/nowhere\/dino_deitsmall16_pretrain\.pth \(the server refused: .*HTTP 404\)/,
  );
});

test('through a CONNECT proxy when HTTP_PROXY is set (and not around it)', async () => {
  const dir = join(tmp, 'proxy');
  proxied = 0;
  const r = await fetchWeights('dino-vits16', { env: env(dir, { HTTP_PROXY: proxyUrl }) });
  assert.deepEqual(readFileSync(r.path), BODY);
  assert.equal(proxied, 1, 'one tunnel through the proxy');
  const direct = await fetchWeights('dino-vits16', { env: env(join(tmp, 'no-proxy'), { HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' }) });
  assert.deepEqual(readFileSync(direct.path), BODY);
  assert.equal(proxied, 1, 'NO_PROXY goes around it');
});

test('offline: one line naming the URL and where to put a hand-downloaded file; a hand-placed file is used', async () => {
  const dir = join(tmp, 'offline');
  const closed = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  const offline = env(dir, { HARDNEG_WEIGHTS_MIRROR: `http://127.0.0.1:${closed}/files` });
  await assert.rejects(fetchWeights('dino-vits16', { env: offline }), (e: unknown) => {
    const m = (e as Error).message;
    return e instanceof UserError && !m.includes('\n') && m.includes(`http://127.0.0.1:${closed}/files/${DINO}`) && m.includes(`put it at ${join(dir, DINO)}`);
  });
  writeFileSync(join(dir, DINO), BODY);
  const placed = await fetchWeights('dino-vits16', { env: offline });
  assert.equal(placed.downloaded, false);
  assert.equal(placed.sha256, sha(BODY));
});

test('the command: weights fetch NAME into the cache, weights list shows it, and --set model.weights=NAME resolves through it', async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { ROOT } = await import('./helpers/cli.ts');
  const run = promisify(execFile);
  const dir = join(tmp, 'cli');
  const cliEnv = { ...process.env, ...env(dir) };
  const bin = join(ROOT, 'bin', 'hardneg');
  const fetched = await run(process.execPath, [bin, 'weights', 'fetch', 'dino-vits16', '--json'], { env: cliEnv });
  const report = JSON.parse(fetched.stdout) as { path: string; sha256: string; downloaded: boolean };
  assert.equal(report.downloaded, true);
  assert.equal(report.sha256, sha(BODY));
  const listed = JSON.parse((await run(process.execPath, [bin, 'weights', 'list', '--json'], { env: cliEnv })).stdout) as {
    weights: Array<{ name: string; cached: string | null }>;
  };
  assert.deepEqual(
    listed.weights.map((w) => [w.name, w.cached !== null]),
    [
      ['resnet50', false],
      ['googlenet', false],
      ['dino-vits16', true],
    ],
  );
  // A name resolves through the cache, for its own backbone only; an uncached name says how to fetch it.
  const { makeImageFolder } = await import('./helpers/image_folder.ts');
  const images = join(tmp, 'images');
  await makeImageFolder(images, 'train', ['a', 'b', 'c', 'd', 'e'], 4, 1);
  await makeImageFolder(images, 'test', ['f', 'g'], 2, 2);
  const train = (weights: string, backbone: string) =>
    run(
      process.execPath,
      [
        bin,
        'train',
        '--dataset',
        'folder',
        '--data-root',
        images,
        '--out',
        join(tmp, `run-${weights}`),
        '--set',
        `model.backbone=${backbone}`,
        '--set',
        `model.weights=${weights}`,
      ],
      { env: cliEnv },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
  const wrongBackbone = await train('dino-vits16', 'resnet50');
  assert.equal(wrongBackbone.code, 2);
  assert.match(wrongBackbone.stderr, /model\.weights dino-vits16: these are dino-vits16 weights, but model\.backbone is resnet50/);
  const notFetched = await train('googlenet', 'googlenet');
  assert.equal(notFetched.code, 2);
  assert.match(notFetched.stderr, /model\.weights googlenet: not in the cache yet .*run 'npx hardneg weights fetch googlenet' first/);
});

test('an unknown name lists the known ones', async () => {
  await assert.rejects(fetchWeights('resnet51'), /unknown weights 'resnet51': expected resnet50, googlenet or dino-vits16/);
});
