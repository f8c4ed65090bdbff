// The search service (src/search/service.ts) over a brute-force in-memory index: JSON, id and
// image-upload searches against distances computed here independently, thumbnails, every kind of
// bad request answered with its 4xx while the server keeps answering, 2,000 requests from 32
// clients without an error, and a graceful stop (close() and SIGTERM/SIGINT) that lets a slow
// request finish.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { createSearchService, type SearchService } from '../src/search/service.ts';
import { loadTest } from '../src/search/load_test.ts';
import type { SearchHit, SearchIndex } from '../src/search/types.ts';
import { ROOT, hardneg } from './helpers/cli.ts';
import { colourFolder, meanColour } from './helpers/colour_folder.ts';
import { MemoryIndex } from './helpers/memory_index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-service-'));
const CLASSES = ['a', 'b', 'c'];
const PER_CLASS = 4;
const DIM = 3;
let paths: string[] = [];
let labels: string[] = [];
let vectors: Float32Array = new Float32Array(0);
let index: MemoryIndex;
let service: SearchService;
let base = '';

const embedImage = meanColour;

/** The k nearest items by Euclidean distance, computed in float64 from the stored rows. */
function bruteForce(query: ArrayLike<number>, k: number, keep: (id: number) => boolean = () => true): Array<{ id: number; distance: number }> {
  const all: Array<{ id: number; distance: number }> = [];
  for (let id = 0; id < labels.length; id++) {
    if (!keep(id)) continue;
    let s = 0;
    for (let j = 0; j < DIM; j++) s += ((query[j] as number) - (vectors[id * DIM + j] as number)) ** 2;
    all.push({ id, distance: Math.sqrt(s) });
  }
  return all.sort((x, y) => x.distance - y.distance || x.id - y.id).slice(0, k);
}

function assertSameHits(got: SearchHit[], want: Array<{ id: number; distance: number }>): void {
  assert.deepEqual(
    got.map((h) => h.id),
    want.map((h) => h.id),
  );
  for (const [i, h] of got.entries()) {
    assert.ok(Math.abs(h.distance - (want[i] as { distance: number }).distance) < 1e-5, `distance ${i}: ${h.distance} vs ${want[i]?.distance}`);
    assert.equal(h.label, labels[h.id]);
    assert.equal(h.path, paths[h.id]);
  }
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: () => Record<string, unknown>;
}

/** One request on a fresh connection; body chunks are written one after another (no Content-Length unless given). */
function call(
  method: string,
  path: string,
  opts: { body?: string | Buffer | Buffer[]; headers?: Record<string, string | number>; url?: string } = {},
): Promise<Answer> {
  return new Promise((resolveCall, reject) => {
    const req = request(new URL(path, opts.url ?? base), { method, headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolveCall({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) as Record<string, unknown> });
      });
    });
    // A server that answers before reading the whole body may reset the connection while we still write.
    req.on('error', reject);
    const parts = opts.body === undefined ? [] : Array.isArray(opts.body) ? opts.body : [opts.body];
    for (const p of parts) req.write(p);
    req.end();
  });
}

function postJson(value: unknown, url?: string): Promise<Answer> {
  const body = typeof value === 'string' ? value : JSON.stringify(value);
  return call('POST', '/api/search', {
    body,
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    ...(url ? { url } : {}),
  });
}

/** A multipart/form-data body with one file field and text fields, assembled by hand. */
function multipart(
  file: { field: string; name: string; type: string; bytes: Buffer } | null,
  fields: Record<string, string> = {},
): { body: Buffer; type: string } {
  const boundary = '----hardnegtest' + Math.random().toString(16).slice(2);
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  if (file) {
    parts.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.name}"\r\nContent-Type: ${file.type}\r\n\r\n`),
    );
    parts.push(file.bytes, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

async function stillAnswers(url = base): Promise<void> {
  const r = await call('GET', '/api/info', { url });
  assert.equal(r.status, 200, 'the server should still answer after a bad request');
}

async function startService(idx: SearchIndex, opts: Partial<Parameters<typeof createSearchService>[0]> = {}): Promise<{ svc: SearchService; url: string }> {
  const svc = createSearchService({ index: idx, ...opts });
  const addr: AddressInfo = await svc.listen(0, '127.0.0.1');
  return { svc, url: `http://127.0.0.1:${addr.port}` };
}

before(async () => {
  ({ paths, labels, vectors } = await colourFolder(tmp, CLASSES, PER_CLASS, 5));
  index = new MemoryIndex({ vectors, dim: DIM, labels, paths, imagesRoot: tmp });
  ({ svc: service, url: base } = await startService(index, { embedImage, imagesRoot: tmp }));
});

after(async () => {
  await service?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('GET /api/info describes the index and what it can do', async () => {
  const r = await call('GET', '/api/info');
  assert.equal(r.status, 200);
  const info = r.json();
  assert.equal(info.dim, DIM);
  assert.equal(info.count, CLASSES.length * PER_CLASS);
  assert.equal(info.metric, 'l2');
  assert.equal(info.kind, 'exact');
  assert.equal(info.imageQueries, true);
  assert.equal(info.thumbnails, true);
});

test('GET / serves the self-contained search page', async () => {
  const r = await call('GET', '/');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/html/);
  const html = r.body.toString('utf8');
  assert.match(html, /<input type="file" id="file"/);
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)="(?!data:)/, 'no external scripts, stylesheets or images');
});

test('JSON vector search equals brute force, with k and a label filter', async () => {
  const queries = [
    [0.1, 0.2, 0.3],
    [0.5, 0.1, 0.1],
    [vectors[4] as number, vectors[5] as number, vectors[6] as number],
  ];
  for (const q of queries) {
    for (const k of [1, 5, 100]) {
      const r = await postJson({ vector: q, k });
      assert.equal(r.status, 200, r.body.toString());
      assertSameHits(r.json().results as SearchHit[], bruteForce(q, k));
    }
    const r = await postJson({ vector: q, k: 3, where: "label = 'b'" });
    assert.equal(r.status, 200, r.body.toString());
    assertSameHits(
      r.json().results as SearchHit[],
      bruteForce(q, 3, (id) => labels[id] === 'b'),
    );
  }
  // k defaults to 10.
  const r = await postJson({ vector: [0, 0, 0] });
  assert.equal((r.json().results as SearchHit[]).length, 10);
});

test('search by id: the stored vector as the query, the item itself left out', async () => {
  const id = 5;
  const r = await postJson({ id, k: 4 });
  assert.equal(r.status, 200, r.body.toString());
  const body = r.json();
  assert.deepEqual(body.query, { id, label: labels[id], path: paths[id] });
  const q = Array.from(vectors.subarray(id * DIM, (id + 1) * DIM));
  assertSameHits(
    body.results as SearchHit[],
    bruteForce(q, 4, (i) => i !== id),
  );
});

test('multipart upload: the image is embedded and searched', async () => {
  const id = 9;
  const bytes = await sharp(join(tmp, paths[id] as string)).toBuffer();
  const { body, type } = multipart({ field: 'image', name: 'q.png', type: 'image/png', bytes }, { k: '3' });
  const r = await call('POST', '/api/search', { body, headers: { 'Content-Type': type, 'Content-Length': body.length } });
  assert.equal(r.status, 200, r.body.toString());
  const results = r.json().results as SearchHit[];
  assert.equal(results.length, 3);
  assert.equal(results[0]?.id, id, 'the uploaded image is its own nearest neighbour');
  assert.ok((results[0]?.distance as number) < 1e-6);
  assertSameHits(results, bruteForce(await embedImage(bytes), 3));
  // The browser's FormData (fetch, chunked parts, a where field) takes the same path.
  const form = new FormData();
  form.append('k', '2');
  form.append('where', "label = 'a'");
  form.append('image', new Blob([bytes], { type: 'image/png' }), 'q.png');
  const res = await fetch(`${base}/api/search`, { method: 'POST', body: form });
  assert.equal(res.status, 200);
  const viaFetch = ((await res.json()) as { results: SearchHit[] }).results;
  assertSameHits(
    viaFetch,
    bruteForce(await embedImage(bytes), 2, (i) => labels[i] === 'a'),
  );
});

test('thumbnails: WebP at most 160 px, cached; 404 JSON without an image; no escape from the image folder', async () => {
  const r = await call('GET', '/api/items/3/image');
  assert.equal(r.status, 200, r.body.toString());
  assert.equal(r.headers['content-type'], 'image/webp');
  const meta = await sharp(r.body).metadata();
  assert.equal(meta.format, 'webp');
  assert.ok((meta.width as number) <= 160 && (meta.height as number) <= 160);
  const again = await call('GET', '/api/items/3/image');
  assert.deepEqual(again.body, r.body);
  assert.equal((await call('GET', '/api/items/999/image')).status, 404);

  // An index whose stored paths point outside the folder, or nowhere: every thumbnail is a 404.
  const evil = new MemoryIndex({ vectors: new Float32Array(4 * DIM), dim: DIM, paths: ['../../../etc/passwd', '/etc/passwd', null, 'train/../../x.png'] });
  const { svc, url } = await startService(evil, { imagesRoot: join(tmp, 'train', 'a') });
  try {
    for (let id = 0; id < 4; id++) {
      const t = await call('GET', `/api/items/${id}/image`, { url });
      assert.equal(t.status, 404, `item ${id}`);
      assert.equal(typeof t.json().error, 'string');
    }
    const none = createSearchService({ index, imagesRoot: null });
    const addr = await none.listen(0, '127.0.0.1');
    const t = await call('GET', '/api/items/0/image', { url: `http://127.0.0.1:${addr.port}` });
    assert.equal(t.status, 404);
    assert.match(String(t.json().error), /no image/);
    await none.close();
  } finally {
    await svc.close();
  }
});

test('bad requests are answered with their 4xx and a JSON error, and the server keeps answering', async () => {
  const png = await sharp(join(tmp, paths[0] as string)).toBuffer();
  const cases: Array<[string, () => Promise<Answer>, number]> = [
    ['vector of the wrong length', () => postJson({ vector: [1, 2] }), 400],
    ['a string in the vector', () => postJson({ vector: [1, 'x', 2] }), 400],
    ['a null in the vector', () => postJson({ vector: [1, null, 2] }), 400],
    ['an overflowing number (Infinity)', () => postJson('{"vector": [1e999, 0, 0]}'), 400],
    ['a number beyond float32', () => postJson('{"vector": [1e300, 0, 0]}'), 400],
    ['vector not an array', () => postJson({ vector: 'abc' }), 400],
    ['k = 0', () => postJson({ vector: [0, 0, 0], k: 0 }), 400],
    ['k = -3', () => postJson({ vector: [0, 0, 0], k: -3 }), 400],
    ['k = 1.5', () => postJson({ vector: [0, 0, 0], k: 1.5 }), 400],
    ['k = "5x"', () => postJson({ vector: [0, 0, 0], k: '5x' }), 400],
    ['k as a string in JSON', () => postJson({ vector: [0, 0, 0], k: '5' }), 400],
    ['k above the maximum', () => postJson({ vector: [0, 0, 0], k: 1001 }), 400],
    ['malformed JSON', () => postJson('{"vector": [1, 2, '), 400],
    ['JSON that is not an object', () => postJson('[1, 2, 3]'), 400],
    ['neither vector nor id', () => postJson({ k: 3 }), 400],
    ['both vector and id', () => postJson({ vector: [0, 0, 0], id: 1 }), 400],
    ['an unknown field', () => postJson({ vector: [0, 0, 0], kk: 3 }), 400],
    ['a negative id', () => postJson({ id: -1 }), 400],
    ['an id that is not there', () => postJson({ id: 12345 }), 404],
    ['a filter the index cannot parse', () => postJson({ vector: [0, 0, 0], where: 'label ~~ 3' }), 400],
    ['a filter that is not a string', () => postJson({ vector: [0, 0, 0], where: 3 }), 400],
    ['a JSON body over 1 MiB (declared)', () => postJson({ vector: [0, 0, 0], pad: 'x'.repeat((1 << 20) + 10) }), 413],
    [
      'a JSON body over 1 MiB (chunked, no length)',
      () =>
        call('POST', '/api/search', { body: Array.from({ length: 40 }, () => Buffer.alloc(64 << 10, 32)), headers: { 'Content-Type': 'application/json' } }),
      413,
    ],
    ['an unsupported content type', () => call('POST', '/api/search', { body: 'x', headers: { 'Content-Type': 'application/xml', 'Content-Length': 1 } }), 415],
    [
      'an upload that is not an image',
      () => {
        const m = multipart({ field: 'image', name: 'x.png', type: 'image/png', bytes: Buffer.from('this is not a png at all') });
        return call('POST', '/api/search', { body: m.body, headers: { 'Content-Type': m.type, 'Content-Length': m.body.length } });
      },
      415,
    ],
    [
      'an upload without the image field',
      () => {
        const m = multipart(null, { k: '3' });
        return call('POST', '/api/search', { body: m.body, headers: { 'Content-Type': m.type, 'Content-Length': m.body.length } });
      },
      400,
    ],
    [
      'an upload with k out of range',
      () => {
        const m = multipart({ field: 'image', name: 'q.png', type: 'image/png', bytes: png }, { k: '0' });
        return call('POST', '/api/search', { body: m.body, headers: { 'Content-Type': m.type, 'Content-Length': m.body.length } });
      },
      400,
    ],
    [
      'an upload over 20 MiB (declared)',
      () => {
        const m = multipart({ field: 'image', name: 'big.png', type: 'image/png', bytes: Buffer.alloc(21 << 20) });
        return call('POST', '/api/search', { body: m.body, headers: { 'Content-Type': m.type, 'Content-Length': m.body.length } });
      },
      413,
    ],
    [
      'an upload over 20 MiB (chunked, no length)',
      () => {
        const m = multipart({ field: 'image', name: 'big.png', type: 'image/png', bytes: Buffer.alloc(21 << 20) });
        return call('POST', '/api/search', { body: m.body, headers: { 'Content-Type': m.type } });
      },
      413,
    ],
    [
      'a multipart body without a boundary',
      () => call('POST', '/api/search', { body: 'x', headers: { 'Content-Type': 'multipart/form-data', 'Content-Length': 1 } }),
      400,
    ],
    ['an unknown route', () => call('GET', '/api/nothing'), 404],
    ['an unknown item', () => call('GET', '/api/items/4000'), 404],
    ['GET /api/search', () => call('GET', '/api/search'), 405],
    ['POST /api/info', () => call('POST', '/api/info', { body: '{}', headers: { 'Content-Length': 2 } }), 405],
    ['DELETE /', () => call('DELETE', '/'), 405],
    ['PUT a thumbnail', () => call('PUT', '/api/items/1/image'), 405],
    ['a foreign Host header (DNS rebinding)', () => call('GET', '/api/info', { headers: { Host: 'evil.example:8080' } }), 403],
  ];
  for (const [what, send, status] of cases) {
    const r = await send();
    assert.equal(r.status, status, `${what}: got ${r.status} ${r.body.toString().slice(0, 200)}`);
    assert.match(String(r.headers['content-type']), /^application\/json/, what);
    assert.equal(typeof r.json().error, 'string', what);
    await stillAnswers();
  }
  assert.equal((await call('GET', '/api/info', { headers: { Host: 'localhost:1234' } })).status, 200, 'localhost by name is fine');
});

test('an image query on an index without a model is a 400; an internal error is a 500 and the server lives on', async () => {
  const png = await sharp(join(tmp, paths[0] as string)).toBuffer();
  const broken: SearchIndex = {
    dir: index.dir,
    manifest: index.manifest,
    engine: index.engine,
    search: async () => {
      throw new Error('disk on fire');
    },
    item: (id) => index.item(id),
    vector: (id) => index.vector(id),
    close: () => {},
  };
  const { svc, url } = await startService(broken);
  const stderr = process.stderr.write;
  try {
    const info = (await call('GET', '/api/info', { url })).json();
    assert.equal(info.imageQueries, false);
    const m = multipart({ field: 'image', name: 'q.png', type: 'image/png', bytes: png });
    const r = await call('POST', '/api/search', { url, body: m.body, headers: { 'Content-Type': m.type, 'Content-Length': m.body.length } });
    assert.equal(r.status, 400);
    assert.match(String(r.json().error), /without a model/);
    await stillAnswers(url);
    // The stack trace of the 500 goes to stderr: keep the test output clean.
    process.stderr.write = (() => true) as typeof process.stderr.write;
    const e = await postJson({ vector: [0, 0, 0] }, url);
    process.stderr.write = stderr;
    assert.equal(e.status, 500);
    assert.match(String(e.json().error), /disk on fire/);
    await stillAnswers(url);
  } finally {
    process.stderr.write = stderr;
    await svc.close();
  }
});

test('2,000 requests from 32 concurrent clients: no errors', async () => {
  let s = 17;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const r = await loadTest({ url: `${base}/api/search`, clients: 32, requests: 2000, body: () => ({ vector: [rand(), rand(), rand()], k: 10 }) });
  console.log(
    `load: ${r.requests} requests, 32 clients: ${r.errors} errors, ${r.qps.toFixed(0)} req/s, p50 ${r.p50_ms.toFixed(1)} ms, p99 ${r.p99_ms.toFixed(1)} ms, max ${r.max_ms.toFixed(1)} ms`,
  );
  assert.equal(r.errors, 0, r.errorSamples.join('\n'));
  assert.equal(r.requests, 2000);
  // Mixed traffic (id searches and thumbnails) as the page sends it.
  const ids = await loadTest({ url: `${base}/api/search`, clients: 8, requests: 200, body: (i) => ({ id: i % labels.length, k: 5 }) });
  assert.equal(ids.errors, 0, ids.errorSamples.join('\n'));
  const thumbs = await loadTest({ url: `${base}/api/items/1/image`, clients: 8, requests: 100 });
  assert.equal(thumbs.errors, 0, thumbs.errorSamples.join('\n'));
});

test('close() lets an in-flight slow request finish, then refuses new connections', async () => {
  const slow = new MemoryIndex({ vectors, dim: DIM, labels, paths, delayMs: 600 });
  const { svc, url } = await startService(slow);
  const inFlight = postJson({ vector: [0, 0, 0], k: 2 }, url);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(slow.searches, 1, 'the request has reached the index');
  const t0 = performance.now();
  await svc.close();
  assert.ok(performance.now() - t0 > 300, 'close() waited for the request');
  const r = await inFlight;
  assert.equal(r.status, 200);
  assert.equal((r.json().results as SearchHit[]).length, 2);
  await assert.rejects(call('GET', '/api/info', { url }), /ECONNREFUSED/);
});

/** `serveIndex` on a MemoryIndex in a process of its own (test/helpers/serve_memory.ts). */
async function spawnServer(delayMs: number): Promise<{ url: string; exited: Promise<number | null>; stderr: () => string; kill: (s: NodeJS.Signals) => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'serve_memory.ts'), String(delayMs)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) resolveUrl(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before serving: ${err}`)));
  });
  return { url, exited, stderr: () => err, kill: (signal) => child.kill(signal) };
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: the served index finishes the request in flight and exits 0`, async () => {
    const server = await spawnServer(800);
    const inFlight = postJson({ vector: [0, 0], k: 2 }, server.url);
    await new Promise((r) => setTimeout(r, 250));
    server.kill(signal);
    const r = await inFlight;
    assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual(
      (r.json().results as SearchHit[]).map((h) => h.id),
      [0, 1],
    );
    assert.equal(await server.exited, 0, server.stderr());
  });
}

test('a client still sending a refused body reads the 413 (fetch, a server in its own process)', async () => {
  // Closing a socket with unread data in it resets the connection, and the reset can destroy the
  // answer before the client reads it (fetch then fails with EPIPE: 62 of 100 tries before the
  // service read refused bodies to their end). Declared 2–3 MiB bodies, then a slow chunked one:
  // 20 chunks of 128 KiB, 120 ms apart, still sent for a second after the limit is crossed.
  const server = await spawnServer(0);
  try {
    for (let i = 0; i < 30; i++) {
      const body = i % 2 ? 'x'.repeat(2 << 20) : new Uint8Array(3 << 20);
      const res = await fetch(`${server.url}/api/search`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
      assert.equal(res.status, 413, `try ${i}`);
      await res.arrayBuffer();
    }
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 20) return controller.close();
        if (sent > 0) await new Promise((r) => setTimeout(r, 120));
        sent++;
        controller.enqueue(new Uint8Array(128 << 10).fill(32));
      },
    });
    const res = await fetch(`${server.url}/api/search`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 413);
    assert.match(((await res.json()) as { error: string }).error, /larger than/);
    await stillAnswers(server.url);
  } finally {
    server.kill('SIGTERM');
    await server.exited;
  }
});

test('hardneg serve --help documents both modes; --index of a missing index is one line, exit 2', () => {
  const help = hardneg(['serve', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /hardneg serve RUN_DIR/);
  assert.match(help.stdout, /hardneg serve --index INDEX_DIR/);
  assert.match(help.stdout, /default 8080/);
  assert.match(help.stdout, /POST \/api\/search/);
  const r = hardneg(['serve', '--index', join(tmp, 'no-such-index'), '--port', '0']);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.equal(hardneg(['serve', '--index', join(tmp, 'x'), 'extra']).code, 2);
});
