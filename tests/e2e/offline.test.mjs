// The app shell offline: after a first visit, a reload with the network off still draws a figure
// (the service worker serves the page, styles, wasm and worker scripts; the model comes from the
// browser's model store), a load logs no error (an icon, a manifest), and a new deployment is
// offered and taken on reload without mixing builds. Each test starts from a first visit in a
// browser profile of its own (nothing kept yet), so none depends on another.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { serve, browser, artifact, DIST, waitForModel } from "./harness.mjs";

const TIMEOUT = 300_000;
let server;

/// The page is controlled by an active service worker and the bundled model is in the model store
/// (the page's list of stored models names it once it is kept). A predicate that awaits (the cache
/// itself) would not do: waitForFunction takes the promise it returns as a true value at once.
async function waitUntilKeptOffline(p) {
  await p.waitForFunction(() => navigator.serviceWorker.controller
    && [...document.querySelectorAll("#stored-models .url")].some((e) => e.textContent.endsWith(".gguf")), null, { timeout: TIMEOUT });
  assert.ok(await p.evaluate(async () => (await (await caches.open("loupe-models-v1")).keys()).some((r) => r.url.endsWith(".gguf"))));
}

/// A browser of test `t`'s own (a fresh profile) and a first visit in it, kept for offline use;
/// `problems` lists every error the page logged or met, and `requests` what it asked the server.
async function firstVisit(t) {
  const chromium = await browser();
  t.after(() => chromium.close());
  const page = await chromium.context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("requestfailed", (r) => problems.push(`failed: ${r.url()}`));
  page.on("response", (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
  const from = server.requests.length;
  await page.goto(server.base);
  await waitForModel(page);
  await waitUntilKeptOffline(page);
  return { context: chromium.context, page, problems, requests: server.requests.slice(from) };
}

before(async () => {
  server = await serve();
});

after(async () => {
  await server?.close();
});

test("a first visit logs no error and has an icon and a manifest", async (t) => {
  const { page, problems, requests } = await firstVisit(t);
  assert.deepEqual(problems, []);
  assert.ok(!requests.includes("/favicon.ico"), "the page names its own icon");
  const manifest = await page.evaluate(async () => (await fetch(document.querySelector('link[rel="manifest"]').href)).json());
  assert.equal(manifest.short_name, "Loupe");
  assert.ok(manifest.icons.some((i) => i.sizes === "512x512"));
  const stored = await page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith("loupe-shell-")).length);
  assert.equal(stored, 1, "one build's shell is precached");
});

test("with the network off, a reload draws a figure", async (t) => {
  const { context, page } = await firstVisit(t);
  // Offline for the page, and the server unreachable for anything that bypasses that emulation
  // (the browser's own check for a newer service worker).
  await context.setOffline(true);
  server.setDown(true);
  try {
    const before = server.requests.length;
    await page.reload();
    await waitForModel(page);
    await page.click("#run");
    await page.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
    assert.equal(Number(await page.getAttribute("#figure", "data-n-rows")), 31);
    assert.ok(Number(await page.getAttribute("#figure", "data-n-positions")) > 10);
    const attempted = server.requests.slice(before).filter((r) => r !== "/sw.js");
    assert.deepEqual(attempted, [], "everything came from the browser's caches");
    await page.locator("#figure").screenshot({ path: artifact("offline-figure.png") });
  } finally {
    server.setDown(false);
    await context.setOffline(false);
  }
});

test("a new deployment is offered, and taken on reload", async (t) => {
  const { page } = await firstVisit(t);
  const current = fs.readFileSync(path.join(DIST, "sw.js"), "utf8");
  const next = current.replace(/const BUILD = "([0-9a-f]+)"/, 'const BUILD = "$1next"');
  assert.notEqual(next, current);
  server.replace["/sw.js"] = next;
  try {
    await page.reload();
    await waitForModel(page);
    await page.waitForSelector("#update-ready", { timeout: 60_000 });
    await page.screenshot({ path: artifact("update-ready.png") });
    await Promise.all([page.waitForEvent("load", { timeout: 60_000 }), page.click("#update-ready button")]);
    await waitForModel(page);
    const build = await page.evaluate(async () => {
      const text = await (await fetch(navigator.serviceWorker.controller.scriptURL)).text();
      return /const BUILD = "([^"]+)"/.exec(text)[1];
    });
    assert.match(build, /next$/, "the new build controls the page");
    const shells = await page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith("loupe-shell-")));
    assert.deepEqual(shells.length, 1, `the old build's cache is gone: ${shells}`);
  } finally {
    delete server.replace["/sw.js"];
  }
});
