// The search page of `hardneg serve --index`: one self-contained HTML document (inline CSS and
// script, no external assets, no framework) so it works offline and under a strict CSP. It reads
// /api/info to learn what the index offers, then queries POST /api/search with an uploaded image
// (multipart) or a stored item's id, and shows the neighbours as a grid of cards; clicking a card
// searches from that item. Errors from the API are shown as the API words them.

const CSS = `
:root { color-scheme: light dark; --bg: #fafafa; --fg: #1d1d1f; --muted: #6b6b72; --card: #fff; --line: #d9d9de; --accent: #2563eb; --bad: #b42318; }
@media (prefers-color-scheme: dark) { :root { --bg: #151517; --fg: #ececf0; --muted: #a0a0aa; --card: #202024; --line: #36363c; --accent: #6ea1ff; --bad: #ff8b7e; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
header { padding: 14px 24px; border-bottom: 1px solid var(--line); display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
#info { color: var(--muted); }
main { padding: 16px 24px 40px; max-width: 1280px; }
.controls { display: flex; gap: 16px; flex-wrap: wrap; align-items: stretch; }
#drop { flex: 1 1 320px; min-height: 120px; border: 2px dashed var(--line); border-radius: 10px; display: flex; align-items: center; justify-content: center; text-align: center; padding: 12px; cursor: pointer; color: var(--muted); }
#drop.over { border-color: var(--accent); color: var(--accent); }
#drop[hidden] { display: none; }
form { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; padding: 12px; border: 1px solid var(--line); border-radius: 10px; background: var(--card); }
label { color: var(--muted); display: flex; gap: 6px; align-items: center; }
input[type=number], input[type=text] { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
input[type=number] { width: 90px; }
#where { width: 220px; }
button { font: inherit; padding: 5px 12px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
#error { margin: 12px 0 0; padding: 8px 12px; border-radius: 8px; border: 1px solid var(--bad); color: var(--bad); white-space: pre-wrap; }
#error[hidden] { display: none; }
#query { display: flex; gap: 12px; align-items: center; margin: 16px 0 8px; min-height: 24px; color: var(--muted); }
#query img { width: 72px; height: 72px; object-fit: contain; border-radius: 6px; border: 1px solid var(--line); background: var(--card); image-rendering: pixelated; }
#results { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
.hit { display: flex; flex-direction: column; align-items: stretch; text-align: left; padding: 8px; border: 1px solid var(--line); border-radius: 10px; background: var(--card); color: var(--fg); cursor: pointer; }
.hit:hover, .hit:focus-visible { border-color: var(--accent); outline: none; }
.hit .thumb { width: 100%; aspect-ratio: 1; object-fit: contain; border-radius: 6px; background: var(--bg); image-rendering: pixelated; }
.hit .noimg { width: 100%; aspect-ratio: 1; display: flex; align-items: center; justify-content: center; border-radius: 6px; background: var(--bg); color: var(--muted); font-size: 22px; }
.hit .label { font-weight: 600; margin-top: 6px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.hit .meta { color: var(--muted); font-variant-numeric: tabular-nums; display: flex; justify-content: space-between; gap: 6px; }
#status { color: var(--muted); margin-left: auto; }
`;

// Plain ES2020 in the browser; every string from the API goes through textContent, never innerHTML.
const SCRIPT = `
(() => {
  const $ = (id) => document.getElementById(id);
  const state = { info: null, busy: 0 };
  const fmt = (d) => (Math.abs(d) >= 100 ? d.toFixed(1) : String(Number(d.toPrecision(3))));

  function showError(msg) {
    const e = $('error');
    e.textContent = msg;
    e.hidden = !msg;
  }
  function setStatus(msg) { $('status').textContent = msg; }

  function options() {
    const k = $('k').value.trim();
    const where = $('where').value.trim();
    return { k: k === '' ? 10 : Number(k), where };
  }

  async function call(init) {
    state.busy++;
    setStatus('searching…');
    const t0 = performance.now();
    try {
      const res = await fetch('/api/search', Object.assign({ method: 'POST' }, init));
      let body = null;
      try { body = await res.json(); } catch { body = null; }
      if (!res.ok) throw new Error((body && body.error) || ('HTTP ' + res.status + ' ' + res.statusText));
      showError('');
      setStatus(body.results.length + ' neighbours in ' + Math.round(performance.now() - t0) + ' ms');
      return body;
    } catch (err) {
      showError(err instanceof TypeError ? 'cannot reach the server (' + err.message + ')' : err.message);
      setStatus('');
      return null;
    } finally {
      state.busy--;
    }
  }

  function thumb(id, cls) {
    const img = document.createElement('img');
    img.className = cls;
    img.alt = 'item ' + id;
    img.loading = 'lazy';
    img.src = '/api/items/' + id + '/image';
    return img;
  }

  function showQuery(text, imgEl) {
    const q = $('query');
    q.replaceChildren();
    if (imgEl) {
      imgEl.addEventListener('error', () => imgEl.remove());
      q.appendChild(imgEl);
    }
    const span = document.createElement('span');
    span.textContent = text;
    q.appendChild(span);
  }

  function render(results) {
    const grid = $('results');
    grid.replaceChildren();
    for (const hit of results) {
      const card = document.createElement('button');
      card.type = 'button';
      card.className = 'hit';
      card.dataset.id = String(hit.id);
      card.title = (hit.path || 'item ' + hit.id) + ' — click to search from it';
      if (state.info && state.info.thumbnails && hit.path) {
        const img = thumb(hit.id, 'thumb');
        img.addEventListener('error', () => {
          const ph = document.createElement('div');
          ph.className = 'noimg';
          ph.textContent = '#' + hit.id;
          img.replaceWith(ph);
        });
        card.appendChild(img);
      } else {
        const ph = document.createElement('div');
        ph.className = 'noimg';
        ph.textContent = '#' + hit.id;
        card.appendChild(ph);
      }
      const label = document.createElement('div');
      label.className = 'label';
      label.textContent = hit.label === null ? '(no label)' : hit.label;
      const meta = document.createElement('div');
      meta.className = 'meta';
      const id = document.createElement('span');
      id.textContent = '#' + hit.id;
      const dist = document.createElement('span');
      dist.className = 'distance';
      dist.textContent = 'd = ' + fmt(hit.distance);
      meta.append(id, dist);
      card.append(label, meta);
      card.addEventListener('click', () => searchId(hit.id));
      grid.appendChild(card);
    }
  }

  async function searchId(id) {
    $('qid').value = String(id);
    const { k, where } = options();
    const payload = { id, k };
    if (where) payload.where = where;
    const body = await call({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload) });
    if (!body) return;
    const q = body.query;
    const text = 'neighbours of #' + id + (q && q.label !== null ? ' (' + q.label + ')' : '') + (q && q.path ? ' · ' + q.path : '');
    showQuery(text, state.info.thumbnails && q && q.path ? thumb(id, '') : null);
    render(body.results);
  }

  async function searchFile(file) {
    if (!file) return;
    const { k, where } = options();
    const form = new FormData();
    form.append('k', String(k));
    if (where) form.append('where', where);
    form.append('image', file, file.name || 'query');
    const body = await call({ body: form });
    if (!body) return;
    const img = document.createElement('img');
    img.src = URL.createObjectURL(file);
    img.addEventListener('load', () => URL.revokeObjectURL(img.src));
    showQuery('neighbours of ' + (file.name || 'the uploaded image'), img);
    render(body.results);
  }

  function setupDrop() {
    const drop = $('drop');
    const file = $('file');
    drop.hidden = false;
    drop.addEventListener('click', () => file.click());
    drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); file.click(); } });
    file.addEventListener('change', () => { searchFile(file.files && file.files[0]); file.value = ''; });
    for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add('over'); });
    for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      const f = e.dataTransfer && e.dataTransfer.files[0];
      if (f) searchFile(f);
    });
  }

  async function start() {
    $('idform').addEventListener('submit', (e) => {
      e.preventDefault();
      const raw = $('qid').value.trim();
      if (!/^[0-9]+$/.test(raw)) return showError('id: enter a non-negative integer');
      searchId(Number(raw));
    });
    try {
      const res = await fetch('/api/info');
      if (!res.ok) throw new Error('HTTP ' + res.status);
      state.info = await res.json();
    } catch (err) {
      showError('cannot read /api/info: ' + err.message);
      return;
    }
    const i = state.info;
    $('info').textContent = i.count + ' items · ' + i.dim + '-d · ' + i.metric + ' · ' + i.kind +
      (i.imageQueries ? '' : ' · no model: search by id');
    // No max attributes on k and id: the browser's validation bubble would hide the API's explanation.
    $('qid').placeholder = '0–' + Math.max(0, i.count - 1);
    if (i.imageQueries) setupDrop();
    document.body.dataset.ready = 'true';
  }
  start();
})();
`;

/** The search page as one HTML document. */
export function searchPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hardneg search</title>
<link rel="icon" href="data:,">
<style>${CSS}</style>
</head>
<body>
<header><h1>hardneg search</h1><span id="info">loading…</span><span id="status"></span></header>
<main>
  <div class="controls">
    <div id="drop" role="button" tabindex="0" hidden>Drop an image here, or click to choose a file<input type="file" id="file" accept="image/*" hidden></div>
    <form id="idform">
      <label>id <input type="number" id="qid" min="0" step="1" placeholder="0"></label>
      <label>k <input type="number" id="k" min="1" step="1" value="10"></label>
      <label>where <input type="text" id="where" placeholder="label = 'cat'"></label>
      <button type="submit">Search by id</button>
    </form>
  </div>
  <div id="error" role="alert" hidden></div>
  <div id="query"></div>
  <div id="results"></div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
