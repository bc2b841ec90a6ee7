// The browser page's Uppy (tests/interop/uppy_page.html): @uppy/core and @uppy/tus as their
// npm packages ship them, bundled by esbuild (scripts/interop-deps.sh) so the page loads them
// offline from its own origin.
import Uppy from '@uppy/core';
import Tus from '@uppy/tus';

window.UppyTus = { Uppy, Tus, version: Uppy.VERSION };
