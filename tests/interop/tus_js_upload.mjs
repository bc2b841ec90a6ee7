// tus-js-client (npm) under node, for tests/tus_interop.rs: one upload of FILE to ENDPOINT in
// CHUNK-byte PATCHes, as its README shows for node (a file stream with a chunkSize), in
// PROTOCOL: `tus-v1` (the default) or an IETF draft (`ietf-draft-05`: interop version 6). With
// PARALLEL > 1, `parallelUploads: PARALLEL` (tus concatenation: that many partial uploads, then
// a final one), the file given as a Buffer, the source tus-js-client can slice under node.
//
//   node tus_js_upload.mjs ENDPOINT FILE CHUNK [PROTOCOL [PARALLEL]]   (NODE_MODULES: where tus-js-client is)
//
// Prints one JSON line: the upload URL and the requests it made by method. No retries: a
// refusal must fail the test, not hide behind a second try.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [endpoint, file, chunk, protocol = 'tus-v1', parallel = '1'] = process.argv.slice(2);
// The client lives in the test cache (target/interop), not beside this script.
const require = createRequire(path.join(process.env.NODE_MODULES, 'noop.js'));
const tus = require('tus-js-client');
const { version } = require('tus-js-client/package.json');

const requests = {};
const upload = await new Promise((resolve, reject) => {
  const parts = Number(parallel);
  const source = parts > 1 ? fs.readFileSync(file) : fs.createReadStream(file);
  const u = new tus.Upload(source, {
    endpoint,
    chunkSize: Number(chunk),
    protocol,
    ...(parts > 1 ? { parallelUploads: parts } : {}),
    retryDelays: null,
    metadata: { filename: path.basename(file), filetype: 'application/octet-stream' },
    onBeforeRequest(req) {
      const m = req.getMethod();
      requests[m] = (requests[m] || 0) + 1;
    },
    onError: reject,
    onSuccess: () => resolve(u),
  });
  u.start();
});
console.log(JSON.stringify({ url: upload.url, requests, version }));
