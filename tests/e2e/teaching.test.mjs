// The teaching side of the page in real Chromium with real models: the seed's composite as the page
// at lecture-hall window sizes, presentation mode, the guided tour "Rehearsal at dummy tokens" on
// SmolLM2 and Gemma 3 (its numbers checked against the native tool), tracking a token by clicking
// it, and the SVG export rasterised against the PNG export.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { serve, browser, artifact, ROOT, waitForModel, openPage, once } from "./harness.mjs";
import { exportJson } from "./lens-check.mjs";

const LOUPE = path.join(ROOT, "target/release/loupe");
const TIMEOUT = 300_000;
const SEED = "What is the capital of Australia?";
const SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf";
const VIEWPORT = { width: 1440, height: 900 };

/// `page` is the first page: the plain tour on SmolLM2 is taken there (`smolTour`).
let server, chromium, page;

function runNative(model, args) {
  const out = artifact(`native-teaching-${path.basename(model)}.json`);
  execFileSync(LOUPE, ["--model", path.join(ROOT, "models", model), ...args, "--json", out], { stdio: "pipe" });
  return JSON.parse(fs.readFileSync(out, "utf8"));
}

/// Starts the tour and runs it to its last step (`walkTour`).
async function takeTour(p, name) {
  await p.click("#start-tour");
  return walkTour(p, name);
}

/// Walks a tour to its last step, screenshotting each step; returns the steps' captions and
/// what each one framed.
async function walkTour(p, name) {
  await p.waitForSelector('#tour[data-phase="Steps"]', { timeout: TIMEOUT });
  const n = Number(await p.getAttribute("#tour", "data-steps"));
  assert.ok(n >= 4 && n <= 6, `${n} steps`);
  const steps = [];
  for (let i = 0; i < n; i++) {
    assert.equal(Number(await p.getAttribute("#tour", "data-step")), i);
    steps.push({
      title: await p.textContent("#tour h3"),
      caption: await p.textContent("#tour-caption"),
      metric: await p.inputValue("#metric"),
      focus: await p.getAttribute("#tour", "data-focus"),
      // The step's column is set with its number, so its zoom is on the page already, if any.
      column: (await p.locator("#column-zoom").count()) ? await p.getAttribute("#column-zoom", "data-pos") : null,
    });
    await p.screenshot({ path: artifact(`tour-${name}-step-${i + 1}.png`) });
    if (i + 1 < n) await p.click("#tour-next");
  }
  assert.ok(await p.locator("#tour-next").isDisabled(), "the last step has no Next");
  fs.writeFileSync(artifact(`tour-${name}.json`), JSON.stringify({ track: await p.inputValue("#track"), steps }, null, 2));
  return steps;
}

/// Checks the tour's candidate step against the native tool: the rank it states, at the layer and
/// position it frames, is the rank `loupe --track` computes there.
async function checkCandidateStep(p, steps, model) {
  const step = steps.find((s) => /Candidates/.test(s.title));
  assert.ok(step, "a candidates step");
  assert.match(step.metric, /^rank:\d+$/, "the candidates step colours by a tracked token's rank");
  const index = Number(step.metric.split(":")[1]);
  const track = (await p.inputValue("#track")).split(",");
  assert.ok(track.length >= 2, `candidates tracked: ${track}`);
  const [row, pos] = step.focus.split(",").map(Number);
  const stated = Number(/#(\d+)/.exec(step.caption)[1]);
  // The dummy positions are in the prompt, so the prompt alone gives their ranks.
  const native = runNative(model, ["--chat", SEED, "--track", track[index]]);
  assert.ok(native.token_info[pos].template, `position ${pos} is a template token`);
  assert.equal(native.tracked[0].rank[row][pos], stated, `rank of ${track[index]} at layer ${row}, position ${pos}`);
  return { token: track[index], row, pos, rank: stated, track };
}

/// A page of test `t`'s own at the lecture-hall size, with SmolLM2 loaded.
function freshPage(t) {
  return openPage(t, chromium.context, `${server.base}?lens_workers=1`, { viewport: VIEWPORT });
}

/// The first page with the plain tour taken on SmolLM2 to its last step, once; its steps and the
/// candidate step checked against the native tool. The tests that look at the toured page share it
/// and leave it as they found it.
const smolTour = once(async () => {
  const steps = await takeTour(page, "smollm2");
  const found = await checkCandidateStep(page, steps, SMOLLM2);
  return { page, steps, found };
});

/// Sets `p`'s viewport and waits until the page has handled the change: its `resize` listeners
/// (the figure measures its width there) and, a frame later, the redraw that follows.
async function resize(p, size) {
  const now = p.viewportSize();
  if (now?.width === size.width && now?.height === size.height) return;
  await p.evaluate(() => {
    window.__resized = false;
    addEventListener("resize", () => requestAnimationFrame(() => { window.__resized = true; }), { once: true });
  });
  await p.setViewportSize(size);
  await p.waitForFunction(() => window.__resized, null, { timeout: 30_000 });
}

before(async () => {
  server = await serve(undefined, { "/test-models/": path.join(ROOT, "models") });
  chromium = await browser();
  page = await chromium.context.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  await page.setViewportSize(VIEWPORT);
  await page.goto(`${server.base}?lens_workers=1`);
  await waitForModel(page);
});

after(async () => {
  await chromium?.close();
  await server?.close();
});

test("the tour on SmolLM2 reaches its last step, and the rank it states is the native tool's", async () => {
  const { steps, found } = await smolTour();
  assert.equal(steps.length, 6);
  assert.deepEqual(steps.map((s) => s.title.replace(/^Step \d of \d /, "")), [
    "Rows are layers", "Columns are positions", "Colour is entropy", "Template tokens are dummy positions",
    "Candidates before the answer", "The answer",
  ]);
  console.log("SmolLM2 candidate:", JSON.stringify(found));
});

test("a tour link with a pinned question runs that one first, pins it, then tours the seed's question", async (t) => {
  const FRANCE = "What is the capital of France?";
  // The candidate the plain tour finds on SmolLM2, for this one to match.
  const smol = await smolTour();
  // Its own page (the model comes from the browser's storage).
  const linked = await openPage(t, chromium.context, `${server.base}?tour=1&lens_workers=1&pin_chat=${encodeURIComponent(FRANCE)}`,
    { viewport: VIEWPORT, model: false });
  // The candidates come from the seed's own complete run, never from the figure of the run after it.
  await linked.waitForSelector('#tour[data-phase="Tracking"]', { timeout: TIMEOUT });
  assert.notEqual(await linked.inputValue("#track"), "", "the seed's run found candidates to track");
  const steps = await walkTour(linked, "smollm2-pinned");
  const candidates = steps.find((s) => /Candidates/.test(s.title));
  assert.doesNotMatch(candidates.caption, /No candidate could be tracked/);
  const found = await checkCandidateStep(linked, steps, SMOLLM2);
  assert.deepEqual([found.token, found.rank], [smol.found.token, smol.found.rank], "the same candidate as the tour without a pin");
  // The pinned France run is kept, and the tour's runs are compared with it.
  assert.match(await linked.textContent("#compare-info"), /pinned run \(chat “What is the capital of France\?”/);
  const url = new URL(linked.url());
  assert.equal(url.searchParams.get("pin_chat"), FRANCE);
  assert.equal(url.searchParams.get("chat"), SEED);
});

test("the composite is the first thing on screen at 1440×900 and 1280×720, with the zoom beside the grid", async () => {
  // The toured page: the tour's caption above the figure, the last step's column zoomed.
  const { page } = await smolTour();
  try {
    for (const [width, height] of [[1440, 900], [1280, 720]]) {
      await resize(page, { width, height });
      await page.evaluate(() => window.scrollTo(0, 0));
      const overview = await page.locator("#overview").boundingBox();
      const magnified = await page.locator("#magnified").boundingBox();
      const zoom = await page.locator("#column-zoom").boundingBox();
      // Even with the tour's caption above it, the whole overview and the top of the magnified range
      // are on the first screen.
      assert.ok(overview.y + overview.height < height, `the overview is on screen at ${width}×${height}: ${JSON.stringify(overview)}`);
      assert.ok(magnified.y + 100 < height, `the magnified range starts on screen at ${width}×${height}`);
      assert.ok(zoom.x >= magnified.x + magnified.width, "the column zoom is beside the magnified range");
      assert.ok(zoom.y < magnified.y + magnified.height, "and level with it");
      await page.screenshot({ path: artifact(`composite-${width}x${height}.png`) });
    }
  } finally {
    await resize(page, VIEWPORT);
  }
});

test("presentation mode hides the controls and draws the figure larger", async () => {
  const { page } = await smolTour();
  const before = await page.locator("#magnified").boundingBox();
  await page.click("#present");
  try {
    await page.waitForFunction(() => document.querySelector("#magnified")?.dataset.zoom === "1.5");
    assert.ok(!(await page.locator("#controls").isVisible()), "controls hidden");
    const after = await page.locator("#magnified").boundingBox();
    // Each row is 1.5 times taller, so the same rows take 1.5 times the height.
    assert.ok(Math.abs(after.height / before.height - 1.5) < 0.02, `${before.height} -> ${after.height}`);
    await page.screenshot({ path: artifact("presentation-mode.png") });
  } finally {
    // Back to the page as it was, whatever failed above.
    if ((await page.getAttribute("#magnified", "data-zoom")) !== "1") await page.click("#present");
  }
  await page.waitForFunction(() => document.querySelector("#magnified")?.dataset.zoom === "1");
  assert.ok(await page.locator("#controls").isVisible());
});

test("the SVG export, rasterised, matches the PNG export pixel for pixel within antialiasing", async () => {
  // The toured page, its last step's column zoomed (exports do not change what the page shows).
  const { page } = await smolTour();
  const [svg] = await Promise.all([page.waitForEvent("download"), page.click("#export-svg")]);
  const [png] = await Promise.all([page.waitForEvent("download"), page.click("#export-png")]);
  const svgText = fs.readFileSync(await svg.path(), "utf8");
  const pngBase64 = fs.readFileSync(await png.path()).toString("base64");
  fs.writeFileSync(artifact("composite.svg"), svgText);
  fs.copyFileSync(await png.path(), artifact("composite.png"));
  assert.match(svgText, /Position \d+:/, "the zoomed column is part of the export");
  const result = await page.evaluate(async ({ svgText, pngBase64 }) => {
    const load = (src) => new Promise((ok, fail) => { const i = new Image(); i.onload = () => ok(i); i.onerror = fail; i.src = src; });
    const pngImage = await load(`data:image/png;base64,${pngBase64}`);
    const svgImage = await load(URL.createObjectURL(new Blob([svgText], { type: "image/svg+xml" })));
    const { width, height } = pngImage;
    const pixels = (image) => {
      const c = document.createElement("canvas");
      c.width = width; c.height = height;
      const ctx = c.getContext("2d");
      ctx.drawImage(image, 0, 0, width, height);
      return ctx.getImageData(0, 0, width, height).data;
    };
    const a = pixels(pngImage), b = pixels(svgImage);
    let sum = 0, far = 0;
    for (let i = 0; i < a.length; i += 4) {
      const d = Math.max(Math.abs(a[i] - b[i]), Math.abs(a[i + 1] - b[i + 1]), Math.abs(a[i + 2] - b[i + 2]));
      sum += d;
      if (d > 64) far++;
    }
    const n = a.length / 4;
    return { width, height, svgWidth: svgImage.naturalWidth, mean: sum / n, farShare: far / n };
  }, { svgText, pngBase64 });
  console.log("SVG vs PNG:", JSON.stringify(result));
  // The PNG is drawn at twice the SVG's size; the picture is the same when the SVG is scaled up.
  assert.equal(result.width, result.svgWidth * 2);
  // Tolerance: text and cell edges antialias differently in the two renderers, nothing else may.
  assert.ok(result.mean < 0.5, `mean channel difference ${result.mean} (of 255)`);
  assert.ok(result.farShare < 0.001, `share of pixels off by more than 64: ${result.farShare}`);
});

test("clicking a token in the column zoom tracks it, with the native tool's probabilities", async (t) => {
  const page = await freshPage(t);
  await page.fill("#track", "");
  await page.fill("#answer", "0");
  await page.fill("#user", SEED);
  await page.click("#run");
  await page.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  const n = Number(await page.getAttribute("#figure", "data-n-positions"));
  await page.focus("#magnified");
  await page.keyboard.press("Enter"); // the output row at the last position
  const zoom = page.locator("#column-zoom");
  await zoom.waitFor();
  // Layer 20's second choice at the last position.
  const button = zoom.locator('tr[data-layer="20"] button.cand').nth(1);
  const label = await button.locator("code").textContent();
  await button.click();
  await page.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  const track = (await page.inputValue("#track")).split(",");
  assert.equal(track.length, 1);
  assert.match(await page.inputValue("#metric"), /^prob:0$/);
  const native = runNative(SMOLLM2, ["--chat", SEED, "--track", track[0]]);
  assert.equal(native.tracked[0].text.replace(/^ /, "_"), label, "the clicked token is the tracked one");
  const exported = await exportJson(page);
  for (let r = 0; r < native.n_rows; r++) {
    for (let p = 0; p < n; p++) {
      assert.ok(Math.abs(exported.tracked[0].prob[r][p] - native.tracked[0].prob[r][p]) < 1e-3, `P at (${r}, ${p})`);
      assert.equal(exported.tracked[0].rank[r][p] > 0, true);
    }
  }
});

test("the tour on Gemma 3 reaches its last step, and the rank it states is the native tool's", async (t) => {
  const page = await freshPage(t);
  await page.fill("#model-url", `${server.base}test-models/gemma-3-270m-q4_k_m.gguf`);
  await page.click("#load-url");
  await page.waitForFunction(() => /gemma3/.test(document.querySelector("#model-info")?.textContent ?? ""), null, { timeout: TIMEOUT });
  const steps = await takeTour(page, "gemma3");
  const found = await checkCandidateStep(page, steps, "gemma-3-270m-q4_k_m.gguf");
  console.log("Gemma 3 candidate:", JSON.stringify(found));
});

test("the tour on Qwen2.5 reaches its last step too", async (t) => {
  const page = await freshPage(t);
  await page.fill("#model-url", `${server.base}test-models/qwen2.5-coder-0.5b-instruct.gguf`);
  await page.click("#load-url");
  await page.waitForFunction(() => /qwen2/.test(document.querySelector("#model-info")?.textContent ?? ""), null, { timeout: TIMEOUT });
  const steps = await takeTour(page, "qwen2.5");
  const found = await checkCandidateStep(page, steps, "qwen2.5-coder-0.5b-instruct.gguf");
  console.log("Qwen2.5 candidate:", JSON.stringify(found));
});
