// Shared by the browser tests and the browser benchmark: a static server for dist/ that logs every
// request (so a test can tell whether the model was fetched), and Debian's headless Chromium.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const DIST = path.join(ROOT, "dist");
export const ARTIFACTS = path.join(ROOT, "tests/artifacts");

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".wasm": "application/wasm", ".css": "text/css", ".json": "application/json",
  ".gguf": "application/octet-stream", ".md": "text/plain",
};

/// Serves `dir` on 127.0.0.1 (a random port); `requests` lists every path asked for (prefixed by
/// the method when it is not GET). `mounts` maps
/// URL prefixes to other directories (the benchmark serves the test models this way). `replace`
/// maps a path to text served instead of the file (a test deploys a "new build" this way).
/// `setDown(true)` makes every request fail at the connection, as with the network off. `claimed`
/// maps a path to a size its HEAD answer claims (a file too large to exist on the test machine).
/// Files are served with `Range` support (206), an ETag and Last-Modified. `flaky` maps a path to
/// `{ cuts, after, ranges, replaced }`: its next `cuts` answers drop the connection once `after` bytes
/// are sent; with `ranges: false` the server ignores `Range` there, and with `replaced: true` it
/// answers a `Range` request with another ETag (the file changed in between). `ranged` lists every `path range` asked.
/// `extraHeaders` go on every file and `replace` answer (the decode benchmark's COOP and COEP).
export async function serve(dir = DIST, mounts = {}, extraHeaders = {}) {
  const requests = [];
  const replace = {};
  const claimed = {};
  const flaky = {};
  const ranged = [];
  let down = false;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    requests.push(req.method === "GET" ? url.pathname : `${req.method} ${url.pathname}`);
    if (down) {
      req.socket.destroy();
      return;
    }
    const pathname = decodeURIComponent(url.pathname);
    if (claimed[pathname] !== undefined) {
      res.writeHead(req.method === "HEAD" ? 200 : 500, { "content-length": req.method === "HEAD" ? claimed[pathname] : 0 });
      res.end();
      return;
    }
    if (replace[pathname] !== undefined) {
      res.writeHead(200, { ...extraHeaders, "content-type": TYPES[path.extname(pathname)] ?? "text/plain", "cache-control": "no-cache" });
      res.end(replace[pathname]);
      return;
    }
    const mount = Object.keys(mounts).find((prefix) => pathname.startsWith(prefix));
    const root = mount ? mounts[mount] : dir;
    let file = path.join(root, mount ? pathname.slice(mount.length) : pathname);
    if (!file.startsWith(root)) { res.writeHead(403).end(); return; }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index.html");
    if (!fs.existsSync(file)) { res.writeHead(404).end("not found"); return; }
    const { size, mtime } = fs.statSync(file);
    const flake = flaky[pathname];
    const headers = { ...extraHeaders, "content-type": TYPES[path.extname(file)] ?? "application/octet-stream", "cache-control": "no-cache",
      "accept-ranges": "bytes", etag: `"${size}-${mtime.getTime()}"`, "last-modified": mtime.toUTCString() };
    if (flake?.replaced && req.headers.range) headers.etag = `"replaced-${size}"`;
    let start = 0;
    if (req.headers.range) {
      ranged.push(`${pathname} ${req.headers.range}`);
      const asked = /^bytes=(\d+)-$/.exec(req.headers.range);
      if (asked && Number(asked[1]) < size && flake?.ranges !== false) start = Number(asked[1]);
    }
    if (start > 0) {
      res.writeHead(206, { ...headers, "content-length": size - start, "content-range": `bytes ${start}-${size - 1}/${size}` });
    } else {
      res.writeHead(200, { ...headers, "content-length": size });
    }
    if (flake?.cuts > 0 && req.method === "GET") {
      flake.cuts -= 1;
      // Sends `after` bytes, then drops the connection with the rest of the body announced.
      const part = fs.createReadStream(file, { start, end: Math.min(size, start + flake.after) - 1 });
      part.pipe(res, { end: false });
      part.on("end", () => setTimeout(() => req.socket.destroy(), 200));
      return;
    }
    fs.createReadStream(file, { start }).pipe(res);
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const base = `http://127.0.0.1:${server.address().port}/`;
  const setDown = (value) => {
    down = value;
    server.closeIdleConnections?.();
  };
  return { base, requests, replace, claimed, flaky, ranged, setDown, close: () => new Promise((ok) => server.close(ok)) };
}

/// Headless Debian Chromium with a fresh profile that persists across page loads of one test.
export async function browser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1400, height: 1000 },
    acceptDownloads: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  return { context, close: async () => { await context.close(); fs.rmSync(profile, { recursive: true, force: true }); } };
}

export function artifact(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

/// Waits until the page reports a loaded model.
export async function waitForModel(page, timeout = 300_000) {
  await page.waitForFunction(() => /layers/.test(document.querySelector("#model-info")?.textContent ?? ""), null, { timeout });
}

/// A new page of `context` at `url`, with its model (the bundled one unless the link names
/// another) loaded unless `model` is false; page errors are logged, `prepare(page)` runs before the
/// page is opened (listeners, init scripts), and the page is closed when test `t` ends. A test that
/// changes what a page shows opens its own this way, so no test depends on what another did.
export async function openPage(t, context, url, { viewport, model = true, prepare } = {}) {
  const p = await context.newPage();
  // Its context may be closed first (a test's own browser), closing the page with it.
  t.after(() => p.close().catch(() => {}));
  p.on("pageerror", (e) => console.log("page error:", e.message));
  if (viewport) await p.setViewportSize(viewport);
  if (prepare) await prepare(p);
  await p.goto(url);
  if (model) await waitForModel(p);
  return p;
}

/// `make()` run once, on first use: a setup several tests read (a run on a shared page, a report
/// file), whichever of them runs first.
export function once(make) {
  let made;
  return () => (made ??= make());
}
