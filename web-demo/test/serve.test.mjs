import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolvePath, startServer, pkgDir } from '../serve.mjs';

test('only page files and the package are served; no way out of either', () => {
  assert.match(resolvePath('/'), /index\.html$/);
  assert.match(resolvePath('/src/main.js'), /src\/main\.js$/);
  assert.equal(resolvePath('/pkg/browser.js'), join(pkgDir, 'browser.js'));
  for (const bad of ['/../README.md', '/pkg/../../Cargo.toml', '/%2e%2e/Cargo.toml', '/node_modules/x.js',
    '/e2e/demo.test.mjs', '/serve.mjs', '/pkg/%2e%2e/%2e%2e/Cargo.toml', '/%ZZ']) {
    assert.equal(resolvePath(bad), null, bad);
  }
});

test('serves the page, and .wasm as application/wasm', async (t) => {
  const { server, url } = await startServer({ port: 0 });
  t.after(() => server.close());
  const page = await fetch(url);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /text\/html/);
  assert.equal((await fetch(new URL('serve.mjs', url))).status, 404);
  assert.ok(existsSync(join(pkgDir, 'web', 'ringkv_wasm_bg.wasm')), 'build the package first: ./scripts/build-npm');
  const wasm = await fetch(new URL('pkg/web/ringkv_wasm_bg.wasm', url));
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get('content-type'), 'application/wasm');
});
