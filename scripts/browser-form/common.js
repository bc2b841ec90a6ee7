// Shared by the pages of scripts/browser-form-check.sh. Each page is served from an origin
// other than the node's, takes its parameters from its query string, uploads, and writes one
// JSON object into <pre id="result"> when it is done (the script reads it with --dump-dom).
'use strict';

const params = new URLSearchParams(location.search);

// The demo app: it signs upload tokens (GET /token) and allows this page's origin to ask.
const APP = params.get('app');

// `size` bytes from xorshift32 seeded with `seed`, 4 bytes (little-endian) per step: the same
// bytes as `verify.py prng SEED SIZE`.
function prng(seed, size) {
  const out = new Uint8Array(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    for (let j = 0; j < 4 && i + j < size; j++) out[i + j] = (x >>> (8 * j)) & 0xff;
  }
  return out;
}

// A form target for `name` from the demo app: {method, url, fields: {key, token}, expires}.
async function target(name) {
  const r = await fetch(APP + '/token?name=' + encodeURIComponent(name), { cache: 'no-store' });
  if (!r.ok) throw new Error('GET /token: HTTP ' + r.status + ' ' + (await r.text()));
  return r.json();
}

function report(result) {
  const pre = document.createElement('pre');
  pre.id = 'result';
  pre.textContent = JSON.stringify(result);
  document.body.append(pre);
}

// Runs the page's steps and reports what they returned, or the error that stopped them.
function run(steps) {
  window.addEventListener('error', (e) => report({ error: 'uncaught: ' + e.message }));
  steps().then(report, (e) => report({ error: String((e && e.stack) || e) }));
}

// The answer's body as JSON when it is JSON.
function json(text) {
  try { return JSON.parse(text); } catch (_) { return null; }
}
