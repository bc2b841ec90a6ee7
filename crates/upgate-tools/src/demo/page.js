// The demo page's uploader: each file goes from this browser straight to the node's
// POST /upload/form/{appid} (multipart/form-data: key, token, then the file, last), with a
// token this app signs (GET /token). Without script the form still posts (one file, the token
// embedded in the page). The uploads table refreshes itself from GET /rows.
(() => {
  'use strict';
  const form = document.getElementById('upload-form');
  const tbody = document.querySelector('#uploads tbody');
  const count = document.getElementById('count');

  const refresh = async () => {
    try {
      const r = await fetch('/rows', { cache: 'no-store' });
      if (!r.ok) return;
      tbody.innerHTML = await r.text();
      const n = tbody.querySelectorAll('a.file').length;
      if (count) count.textContent = n === 1 ? '1 file' : n + ' files';
    } catch (_) { /* the app is gone; keep what is shown */ }
  };
  setInterval(refresh, 2000);
  if (!form) return;

  const input = document.getElementById('file');
  const zone = document.getElementById('drop');
  const results = document.getElementById('results');
  const sample = document.getElementById('sample');
  input.multiple = true;
  sample.hidden = false;

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // A fresh form target for one file: {method, url, fields: {key, token}, expires}.
  const target = async (name) => {
    const r = await fetch('/token?name=' + encodeURIComponent(name), { cache: 'no-store' });
    const t = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(t.message || 'no token (HTTP ' + r.status + ')');
    return t;
  };

  const upload = async (file) => {
    const li = el('li', 'upload');
    const bar = el('progress');
    bar.max = 100;
    bar.value = 0;
    const state = el('span', 'state', 'asking the app for a token…');
    li.append(el('span', 'name', file.name), ' ', bar, ' ', state);
    results.prepend(li);
    let t;
    try {
      t = await target(file.name);
    } catch (e) {
      li.classList.add('failed');
      state.textContent = e.message;
      return;
    }
    await new Promise((resolve) => {
      const fd = new FormData();
      for (const [k, v] of Object.entries(t.fields)) fd.append(k, v);
      fd.append('file', file, file.name); // last: the node stores the part after the fields
      const xhr = new XMLHttpRequest();
      let events = 0;
      xhr.upload.onprogress = (e) => {
        events += 1;
        li.dataset.progressEvents = String(events);
        if (e.lengthComputable && e.total > 0) {
          bar.value = Math.round((100 * e.loaded) / e.total);
          state.textContent = bar.value + ' %';
        }
      };
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        li.dataset.status = String(xhr.status);
        if (xhr.status === 201 && body && body.url) {
          bar.value = 100;
          li.classList.add('done');
          const a = el('a', 'stored', body.path || body.url);
          a.href = body.url;
          state.replaceChildren('stored at ', a,
            body.callback === 'pending' ? ' (the app is told later)' : '');
          refresh();
        } else {
          li.classList.add('failed');
          const why = body && (body.message || body.error);
          state.textContent = 'HTTP ' + xhr.status + (why ? ': ' + why : '');
        }
        resolve();
      };
      xhr.onerror = () => {
        li.classList.add('failed');
        li.dataset.status = '0';
        state.textContent = 'network error: the node is unreachable or does not allow this page\'s origin';
        resolve();
      };
      xhr.open(t.method || 'POST', t.url);
      xhr.send(fd);
    });
  };

  const uploadAll = async (files) => {
    for (const f of Array.from(files)) await upload(f);
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const files = Array.from(input.files);
    input.value = '';
    uploadAll(files);
  });
  input.addEventListener('change', () => form.requestSubmit());

  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (ev) => {
      ev.preventDefault();
      zone.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    zone.addEventListener(type, () => zone.classList.remove('over'));
  }
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer && ev.dataTransfer.files.length) uploadAll(ev.dataTransfer.files);
  });

  // A small text file made here, for a try without a file at hand (and `#sample` in the URL
  // sends one at load, which is how scripts/browser-form-check.sh drives this page).
  sample.addEventListener('click', () => {
    const now = new Date();
    const name = 'sample-' + now.getTime() + '.txt';
    const text = 'A sample file made by the upgate demo page at ' + now.toISOString() + '.\n'
      + 'line\n'.repeat(20000);
    uploadAll([new File([text], name, { type: 'text/plain' })]);
  });
  if (location.hash === '#sample') sample.click();
})();
