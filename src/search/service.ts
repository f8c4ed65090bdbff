// The search service behind `hardneg serve --index`: a small JSON API over a SearchIndex on
// node:http, plus the search page (page.ts). Every request is validated before it reaches the
// index, every failure is answered with a 4xx/5xx JSON body ({"error": …}) rather than thrown, and
// bodies are bounded while they are read (a client cannot make the server buffer more than the
// limit). When bound to loopback it answers only requests addressed to localhost, so a web page
// on another site cannot reach it through DNS rebinding.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import busboy from 'busboy';
import sharp from 'sharp';
import { UserError } from '../errors.ts';
import { hostAllowed } from '../http_host.ts';
import { searchPage } from './page.ts';
import type { SearchHit, SearchIndex, SearchItem } from './types.ts';

export interface ServiceLimits {
  /** Largest JSON request body in bytes (default 1 MiB). */
  maxJsonBytes: number;
  /** Largest multipart upload in bytes (default 20 MiB). */
  maxUploadBytes: number;
  /** Largest k a query may ask for (default 1000). */
  maxK: number;
  /** Longest `where` filter in characters (default 2000). */
  maxWhereChars: number;
  /** Thumbnail box in pixels (default 160). */
  thumbSize: number;
  /** Bytes of encoded thumbnails kept in memory (default 32 MiB). */
  thumbCacheBytes: number;
  /** How long close() waits for in-flight requests before cutting connections (default 10 s). */
  drainTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServiceLimits = {
  maxJsonBytes: 1 << 20,
  maxUploadBytes: 20 << 20,
  maxK: 1000,
  maxWhereChars: 2000,
  thumbSize: 160,
  thumbCacheBytes: 32 << 20,
  drainTimeoutMs: 10_000,
};

export interface SearchServiceOptions {
  index: SearchIndex;
  /** Encoded image → its embedding (dim floats); without it, image queries answer 400. */
  embedImage?: (bytes: Buffer) => Promise<Float32Array>;
  /** The folder the items' paths are relative to; null/undefined: no thumbnails. */
  imagesRoot?: string | null;
  limits?: Partial<ServiceLimits>;
}

export interface SearchService {
  server: Server;
  /** Starts listening; port 0 picks a free port (see the returned address). */
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting connections, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
}

/** The JSON answer of POST /api/search. */
export interface SearchResponse {
  results: SearchHit[];
  /** For a search by id: the item searched from (it is left out of its own results). */
  query?: SearchItem;
}

const ITEM_IMAGE = /^\/api\/items\/(\d{1,15})\/image$/;
const ITEM = /^\/api\/items\/(\d{1,15})$/;

/** A failure with the HTTP status it is answered with. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Also close the connection: the request body was not (fully) read. */
    readonly closeConnection = false,
  ) {
    super(message);
  }
}

/** Thumbnails by item id, least recently used dropped first once the byte budget is exceeded. */
class ThumbCache {
  private readonly map = new Map<number, Buffer>();
  private bytes = 0;
  constructor(private readonly budget: number) {}
  get(id: number): Buffer | undefined {
    const v = this.map.get(id);
    if (v) {
      // Map iteration order is insertion order: re-inserting marks the entry as most recent.
      this.map.delete(id);
      this.map.set(id, v);
    }
    return v;
  }
  set(id: number, v: Buffer): void {
    if (v.length > this.budget) return;
    const old = this.map.get(id);
    if (old) {
      this.bytes -= old.length;
      this.map.delete(id);
    }
    this.map.set(id, v);
    this.bytes += v.length;
    for (const [key, val] of this.map) {
      if (this.bytes <= this.budget) break;
      this.map.delete(key);
      this.bytes -= val.length;
    }
  }
}

function hasOwn(o: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

/** k from a JSON number, or from a form field's text: a positive integer up to maxK (default 10). */
function parseK(raw: unknown, maxK: number, fromForm = false): number {
  if (raw === undefined || raw === null || (fromForm && raw === '')) return 10;
  const k = fromForm && typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > maxK)
    throw new HttpError(400, `k: expected an integer from 1 to ${maxK}, got ${JSON.stringify(raw)}`);
  return k;
}

function parseWhere(raw: unknown, maxChars: number): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string') throw new HttpError(400, 'where: expected a string (a SQL filter such as "label = \'cat\'")');
  const w = raw.trim();
  if (w.length > maxChars) throw new HttpError(400, `where: longer than ${maxChars} characters`);
  return w.length > 0 ? w : undefined;
}

function parseVector(raw: unknown, dim: number): Float32Array {
  if (!Array.isArray(raw)) throw new HttpError(400, `vector: expected an array of ${dim} numbers`);
  if (raw.length !== dim) throw new HttpError(400, `vector: expected ${dim} numbers (the index's dimension), got ${raw.length}`);
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) {
    const x: unknown = raw[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new HttpError(400, `vector[${i}]: expected a finite number, got ${JSON.stringify(x) ?? String(x)}`);
    // A finite double can still overflow float32 (e.g. 1e300): that would search with Infinity.
    v[i] = x;
    if (!Number.isFinite(v[i] as number)) throw new HttpError(400, `vector[${i}]: ${x} is out of float32 range`);
  }
  return v;
}

function parseId(raw: unknown): number {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0)
    throw new HttpError(400, `id: expected a non-negative integer, got ${JSON.stringify(raw)}`);
  return raw;
}

/** How much of a refused body is read and discarded before the connection is closed, at most. */
const LINGER_BYTES = 64 << 20;
const LINGER_MS = 5000;

/** The request body, stopping (413) as soon as it exceeds `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      if (err) reject(err);
      else resolveBody(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish(new HttpError(413, `request body larger than ${limit} bytes`, true));
      } else chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish(null));
    req.once('error', (err) => finish(new HttpError(400, `reading the request: ${err.message}`, true)));
    req.once('close', () => finish(new HttpError(400, 'request aborted', true)));
  });
}

interface UploadQuery {
  image: Buffer;
  fields: Record<string, string>;
}

/** A multipart/form-data body: the file in field `image` and the text fields, bounded by `limit`. */
function readUpload(req: IncomingMessage, limit: number): Promise<UploadQuery> {
  return new Promise((resolveUpload, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: limit, files: 1, fields: 8, fieldSize: 64 << 10, parts: 12 } });
    } catch (err) {
      reject(new HttpError(400, `multipart body: ${(err as Error).message}`, true));
      return;
    }
    const fields: Record<string, string> = {};
    let image: Buffer | null = null;
    let failed = false;
    const fail = (err: HttpError) => {
      if (failed) return;
      failed = true;
      req.unpipe(bb);
      req.pause();
      reject(err);
    };
    bb.on('file', (name, stream) => {
      if (name !== 'image') {
        stream.resume();
        return fail(new HttpError(400, `multipart body: unexpected file field '${name}' (send the image as field 'image')`, true));
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => fail(new HttpError(413, `upload larger than ${limit} bytes`, true)));
      stream.on('end', () => {
        if (!failed) image = Buffer.concat(chunks);
      });
    });
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(new HttpError(413, `multipart field '${name}' too long`, true));
      fields[name] = value;
    });
    bb.on('filesLimit', () => fail(new HttpError(400, 'multipart body: one image per query', true)));
    bb.on('fieldsLimit', () => fail(new HttpError(400, 'multipart body: too many fields', true)));
    bb.on('partsLimit', () => fail(new HttpError(400, 'multipart body: too many parts', true)));
    bb.on('error', (err: Error) => fail(new HttpError(400, `multipart body: ${err.message}`, true)));
    bb.on('close', () => {
      if (failed) return;
      if (!image || image.length === 0) return fail(new HttpError(400, "multipart body: no file in field 'image'"));
      resolveUpload({ image, fields });
    });
    req.once('close', () => {
      if (!req.complete) fail(new HttpError(400, 'request aborted', true));
    });
    req.pipe(bb);
  });
}

export function createSearchService(opts: SearchServiceOptions): SearchService {
  const { index, embedImage } = opts;
  const limits: ServiceLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const imagesRoot = opts.imagesRoot ? resolve(opts.imagesRoot) : null;
  const dim = index.manifest.dim;
  const thumbs = new ThumbCache(limits.thumbCacheBytes);
  // Concurrent requests for a thumbnail that is not cached yet share one resize.
  const thumbsInFlight = new Map<number, Promise<Buffer>>();
  const page = searchPage();
  // The address listen() bound (the Host check applies on loopback only); none before it.
  let boundHost = '';
  let closing = false;

  const info = {
    dim,
    count: index.manifest.count,
    metric: index.manifest.metric,
    kind: index.manifest.kind,
    engine: index.engine,
    imageQueries: embedImage !== undefined,
    thumbnails: imagesRoot !== null,
    maxK: limits.maxK,
    maxUploadBytes: limits.maxUploadBytes,
  };
  const infoJson = JSON.stringify(info);

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string | number> = {
      'Content-Type': type,
      'Content-Length': typeof body === 'string' ? Buffer.byteLength(body) : body.length,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
      ...extra,
    };
    // While draining, each answered request also ends its keep-alive connection.
    if (closing) headers.Connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
  };
  const sendJson = (res: ServerResponse, status: number, value: unknown): void => send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
  const sendError = (req: IncomingMessage, res: ServerResponse, err: HttpError): void => {
    if (!err.closeConnection) return sendJson(res, err.status, { error: err.message });
    const answer = () => {
      send(res, err.status, 'application/json; charset=utf-8', JSON.stringify({ error: err.message }), { Connection: 'close' });
      res.once('finish', () => setTimeout(() => req.socket.destroy(), 1000).unref());
    };
    if (req.complete || req.destroyed) return answer();
    // The body is refused, but a client still sending it would see the connection reset before it
    // reads the answer (the kernel drops unread data on a reset). So the rest is read and thrown
    // away first, up to LINGER_BYTES or LINGER_MS; a client sending on past that is cut off.
    let discarded = 0;
    let answered = false;
    const finish = () => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      req.off('data', onData);
      answer();
    };
    const onData = (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > LINGER_BYTES) finish();
    };
    const timer = setTimeout(finish, LINGER_MS);
    req.on('data', onData);
    req.once('end', finish);
    req.once('close', finish);
    req.resume();
  };

  const runSearch = async (query: Float32Array, k: number, where: string | undefined, excludeId: number | null): Promise<SearchHit[]> => {
    // A search from a stored item asks for one more and drops the item itself.
    const want = excludeId === null ? k : k + 1;
    let hits: SearchHit[];
    try {
      [hits = []] = await index.search(query, { k: want, ...(where !== undefined ? { where } : {}) });
    } catch (err) {
      // The index reports filters it cannot parse as UserErrors; anything else is ours (500).
      if (err instanceof UserError) throw new HttpError(400, err.message);
      throw err;
    }
    return (excludeId === null ? hits : hits.filter((h) => h.id !== excludeId)).slice(0, k);
  };

  const searchJson = async (req: IncomingMessage): Promise<SearchResponse> => {
    const raw = await readBody(req, limits.maxJsonBytes);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new HttpError(400, `malformed JSON: ${(err as Error).message}`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new HttpError(400, 'expected a JSON object {"vector": [...]} or {"id": N}, with optional "k" and "where"');
    const o = body as Record<string, unknown>;
    for (const key of Object.keys(o))
      if (!['vector', 'id', 'k', 'where'].includes(key)) throw new HttpError(400, `unknown field '${key}' (expected vector or id, k, where)`);
    const k = parseK(o.k, limits.maxK);
    const where = parseWhere(o.where, limits.maxWhereChars);
    const byVector = hasOwn(o, 'vector');
    if (byVector === hasOwn(o, 'id')) throw new HttpError(400, 'give exactly one of "vector" and "id"');
    if (byVector) return { results: await runSearch(parseVector(o.vector, dim), k, where, null) };
    const id = parseId(o.id);
    const [item, vector] = await Promise.all([index.item(id), index.vector(id)]);
    if (!item || !vector) throw new HttpError(404, `no item with id ${id}`);
    return { results: await runSearch(vector, k, where, id), query: item };
  };

  const searchUpload = async (req: IncomingMessage): Promise<SearchResponse> => {
    if (!embedImage) throw new HttpError(400, 'this index was built without a model, so it cannot embed images: search by "vector" or "id" instead', true);
    const declared = Number(req.headers['content-length']);
    // Multipart framing adds a little to the file; a declared length far above the limit is refused before reading.
    if (Number.isFinite(declared) && declared > limits.maxUploadBytes + (64 << 10))
      throw new HttpError(413, `upload larger than ${limits.maxUploadBytes} bytes`, true);
    const { image, fields } = await readUpload(req, limits.maxUploadBytes);
    const k = parseK(fields.k, limits.maxK, true);
    const where = parseWhere(fields.where, limits.maxWhereChars);
    try {
      await sharp(image).metadata();
    } catch {
      throw new HttpError(415, 'the upload is not an image sharp can read (PNG, JPEG, WebP, GIF, TIFF, AVIF, SVG)');
    }
    let query: Float32Array;
    try {
      query = await embedImage(image);
    } catch (err) {
      if (err instanceof UserError) throw new HttpError(415, err.message);
      throw err;
    }
    if (query.length !== dim) throw new Error(`the model gave a ${query.length}-d embedding for an index of dimension ${dim}`);
    return { results: await runSearch(query, k, where, null) };
  };

  const itemImagePath = (item: SearchItem): string | null => {
    if (!imagesRoot || item.path === null || item.path.length === 0 || item.path.includes('\0') || isAbsolute(item.path)) return null;
    const full = resolve(imagesRoot, item.path);
    const rel = relative(imagesRoot, full);
    // The stored path must stay inside the image folder (no '..' escapes through a crafted index).
    if (rel.length === 0 || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return null;
    return full;
  };

  const thumbnail = async (id: number): Promise<Buffer | null> => {
    const cached = thumbs.get(id);
    if (cached) return cached;
    const pending = thumbsInFlight.get(id);
    if (pending) return pending;
    const item = await index.item(id);
    if (!item) throw new HttpError(404, `no item with id ${id}`);
    const file = itemImagePath(item);
    if (!file) return null;
    const made = sharp(file, { failOn: 'none' })
      .rotate()
      .resize({ width: limits.thumbSize, height: limits.thumbSize, fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 80 })
      .toBuffer();
    thumbsInFlight.set(id, made);
    try {
      const buf = await made;
      thumbs.set(id, buf);
      return buf;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || /missing|no such file|unsupported image format|Input file/i.test((err as Error).message))
        throw new HttpError(404, `item ${id}: its image ${item.path} cannot be read`);
      throw err;
    } finally {
      thumbsInFlight.delete(id);
    }
  };

  const methodNotAllowed = (allow: string): HttpError => new HttpError(405, `method not allowed (use ${allow})`);

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const isGet = method === 'GET' || method === 'HEAD';
    if (path === '/api/search') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      const type = (req.headers['content-type'] ?? '').toLowerCase();
      if (type.startsWith('multipart/form-data')) return sendJson(res, 200, await searchUpload(req));
      if (type !== '' && !type.startsWith('application/json') && !type.startsWith('text/plain'))
        throw new HttpError(415, `content type ${type}: send application/json or multipart/form-data`, true);
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > limits.maxJsonBytes) throw new HttpError(413, `request body larger than ${limits.maxJsonBytes} bytes`, true);
      return sendJson(res, 200, await searchJson(req));
    }
    if (path === '/' || path === '/index.html') {
      if (!isGet) throw methodNotAllowed('GET');
      return send(res, 200, 'text/html; charset=utf-8', page, {
        // The page is self-contained: inline script and style, images from this server or the user's own file.
        'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'",
      });
    }
    if (path === '/api/info') {
      if (!isGet) throw methodNotAllowed('GET');
      return send(res, 200, 'application/json; charset=utf-8', infoJson);
    }
    let m = ITEM_IMAGE.exec(path);
    if (m) {
      if (!isGet) throw methodNotAllowed('GET');
      const id = Number(m[1]);
      const buf = await thumbnail(id);
      if (!buf) throw new HttpError(404, `item ${id} has no image (the index has no image folder, or no path for it)`);
      return send(res, 200, 'image/webp', buf, { 'Cache-Control': 'private, max-age=3600' });
    }
    m = ITEM.exec(path);
    if (m) {
      if (!isGet) throw methodNotAllowed('GET');
      const item = await index.item(Number(m[1]));
      if (!item) throw new HttpError(404, `no item with id ${m[1]}`);
      return sendJson(res, 200, item);
    }
    throw new HttpError(404, `not found: ${path}`);
  };

  const server = createServer((req, res) => {
    if (!hostAllowed(boundHost, req.headers.host)) return sendError(req, res, new HttpError(403, 'this server answers requests for localhost only', true));
    route(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return sendError(req, res, err);
      process.stderr.write(`hardneg serve: ${(err as Error).stack ?? String(err)}\n`);
      // Unread body bytes of a failed upload would otherwise be parsed as the next request.
      sendError(req, res, new HttpError(500, `internal error: ${(err as Error).message}`, !req.complete));
    });
  });
  // Uploads of 20 MiB over a slow link take a while, but a stalled client must not hold a slot forever.
  server.requestTimeout = 120_000;
  server.headersTimeout = 20_000;

  return {
    server,
    listen(port, host) {
      boundHost = host;
      return new Promise((resolveListen, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          resolveListen(server.address() as AddressInfo);
        });
      });
    },
    close() {
      closing = true;
      return new Promise((resolveClose) => {
        if (!server.listening) return resolveClose();
        // server.close() waits for every connection; idle keep-alive ones are closed now, busy
        // ones after their response (Connection: close above), and any left after the drain timeout are cut.
        const timer = setTimeout(() => server.closeAllConnections(), limits.drainTimeoutMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolveClose();
        });
        server.closeIdleConnections();
      });
    },
  };
}
