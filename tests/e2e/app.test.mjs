// End-to-end tests of the built app (dist/) in real headless Chromium with the real SmolLM2 model,
// checked against the native `loupe` tool run on the same prompt.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import crypto from "node:crypto";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { serve, browser, artifact, ROOT, ARTIFACTS, waitForModel } from "./harness.mjs";
import { withString } from "./gguf.mjs";

const MODEL = path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
const QUESTION = "What is the capital of Australia?";
const LOUPE = path.join(ROOT, "target/release/loupe");
const TIMEOUT = 300_000;

let server, chromium, page, native;

function runNative(args, model = MODEL) {
  const out = artifact(`native-${Date.now()}.json`);
  execFileSync(LOUPE, ["--model", model, ...args, "--json", out], { stdio: "pipe" });
  return JSON.parse(fs.readFileSync(out, "utf8"));
}

async function runLens(p) {
  await p.click("#run");
  await p.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
}

/// Hovers the magnified view's cell (row, pos) using the page's own layout numbers.
async function hoverCell(p, row, pos) {
  const [start, end] = (await p.getAttribute("#figure", "data-range")).split(",").map(Number);
  const nRows = Number(await p.getAttribute("#figure", "data-n-rows"));
  assert.ok(pos >= start && pos < end, `position ${pos} inside the magnified range ${start}..${end}`);
  await p.locator("#magnified").scrollIntoViewIfNeeded();
  const box = await p.locator("#magnified").boundingBox();
  const LEFT = 52, TOP = 8, ROW_H = 18, RIGHT = 8;
  const cellW = (box.width - LEFT - RIGHT) / (end - start);
  await p.mouse.move(box.x + LEFT + (pos - start + 0.5) * cellW, box.y + TOP + (nRows - 1 - row + 0.5) * ROW_H);
  const tip = p.locator("#tooltip");
  await tip.waitFor({ timeout: 5000 });
  return {
    row: Number(await tip.getAttribute("data-row")),
    pos: Number(await tip.getAttribute("data-pos")),
    entropy: Number(await tip.getAttribute("data-entropy")),
    top1Id: Number(await tip.getAttribute("data-top1-id")),
    text: await tip.textContent(),
  };
}

before(async () => {
  // The other test models, served beside the app so the page can load them by URL.
  server = await serve(undefined, { "/test-models/": path.join(ROOT, "models"), "/test-reports/": ARTIFACTS });
  chromium = await browser();
  page = await chromium.context.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
  native = runNative(["--chat", QUESTION]);
  // One helper worker even on a 2-core machine, so the vocabulary split is what these tests check.
  await page.goto(`${server.base}?lens_workers=1`);
  await waitForModel(page);
  // This Chromium runs relaxed SIMD, so the page picks the relaxed build of the worker.
  assert.match(await page.textContent("#model-info"), /lens threads: 2 · relaxed SIMD/);
});

after(async () => {
  await chromium?.close();
  await server?.close();
});

test("the Australia prompt draws one row per layer and one column per token, matching the native tool", async () => {
  await page.fill("#user", QUESTION);
  await runLens(page);
  await page.locator("#figure").screenshot({ path: artifact("australia-figure.png") });
  assert.equal(Number(await page.getAttribute("#figure", "data-n-rows")), native.n_rows);
  assert.equal(Number(await page.getAttribute("#figure", "data-n-positions")), native.ids.length);
  const count = await page.textContent("#tokens .count");
  assert.match(count, new RegExp(`^${native.ids.length} tokens`));

  // Several cells: the tooltip's top-1 and entropy equal the native tool's.
  const last = native.ids.length - 1;
  for (const [row, pos] of [[30, last], [0, last], [15, last - 3], [20, last - 1], [29, last - 6], [5, last - 10]]) {
    const tip = await hoverCell(page, row, pos);
    assert.deepEqual([tip.row, tip.pos], [row, pos]);
    assert.equal(tip.top1Id, native.top_ids[row][pos][0], `top-1 at (${row}, ${pos})`);
    assert.ok(Math.abs(tip.entropy - native.entropy[row][pos]) < 0.01, `entropy at (${row}, ${pos}): ${tip.entropy} vs ${native.entropy[row][pos]}`);
  }
  await page.locator("#figure").screenshot({ path: artifact("australia-tooltip.png") });
});

test("chat-template tokens are boxed", async () => {
  const boxed = (await page.getAttribute("#figure", "data-template-positions")).split(",").map(Number);
  const expected = native.token_info.map((t, i) => (t.template ? i : -1)).filter((i) => i >= 0);
  assert.deepEqual(boxed, expected);
  const pieces = boxed.map((i) => native.tokens[i]);
  for (const piece of ["<|im_start|>", "<|im_end|>", "ass", "istant", "user", "system"]) {
    assert.ok(pieces.includes(piece), `${piece} is boxed`);
  }
  // The user's question is not.
  const question = native.tokens.indexOf("ĠAustralia");
  assert.ok(!boxed.includes(question));
  assert.equal(await page.locator("#tokens .tok.template").count(), expected.length);
});

test("the column zoom lists every layer", async () => {
  const [start, end] = (await page.getAttribute("#figure", "data-range")).split(",").map(Number);
  const pos = end - 1;
  await hoverCell(page, 10, pos);
  await page.mouse.down();
  await page.mouse.up();
  const zoom = page.locator("#column-zoom");
  await zoom.waitFor();
  assert.equal(Number(await zoom.getAttribute("data-pos")), pos);
  assert.equal(await zoom.locator("tr[data-layer]").count(), native.n_rows);
  // At the last position the output layer's top-1 is "The" (the start of the answer).
  assert.equal(pos, native.ids.length - 1);
  assert.equal(native.top_tokens[30][pos][0], "The");
  assert.equal(await zoom.locator('tr[data-layer="30"] .cand code').first().textContent(), "The");
  // The trajectory chart: one line per token that is top-1 at some layer of the column, in the
  // order they first take the top going up.
  const distinct = [];
  for (let r = 0; r < native.n_rows; r++) {
    const id = native.top_ids[r][pos][0];
    if (!distinct.includes(id)) distinct.push(id);
  }
  const keys = await zoom.locator("#trajectory .key").evaluateAll((ks) => ks.map((k) => Number(k.dataset.id)));
  assert.deepEqual(keys, distinct.slice(0, 8));
  assert.ok((await zoom.locator("#trajectory polyline").count()) >= Math.min(distinct.length, 8));
  await zoom.screenshot({ path: artifact("column-zoom.png") });
});

test("the exported JSON matches the native tool's JSON", async () => {
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-json")]);
  const exported = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
  for (const key of ["model", "text", "ids", "tokens", "n_rows", "top_tokens"]) {
    if (key !== "top_tokens") assert.deepEqual(exported[key], native[key], key);
  }
  assert.deepEqual(exported.prompt, native.prompt);
  for (let r = 0; r < native.n_rows; r++) {
    for (let p = 0; p < native.ids.length; p++) {
      assert.ok(Math.abs(exported.entropy[r][p] - native.entropy[r][p]) < 0.01, `entropy (${r}, ${p})`);
      const [a, b] = native.top_probs[r][p];
      if (a - b > 1e-3) {
        assert.equal(exported.top_ids[r][p][0], native.top_ids[r][p][0], `top-1 (${r}, ${p})`);
        assert.equal(exported.top_tokens[r][p][0], native.top_tokens[r][p][0]);
      }
    }
  }
  const [svg] = await Promise.all([page.waitForEvent("download"), page.click("#export-svg")]);
  const svgText = fs.readFileSync(await svg.path(), "utf8");
  assert.match(svgText, /^<svg /);
  assert.match(svgText, /Entropy \(nats\)/);
  assert.match(svgText, /&lt;\|im_start\|&gt;/);
  fs.copyFileSync(await svg.path(), artifact("australia.svg"));
  const [png] = await Promise.all([page.waitForEvent("download"), page.click("#export-png")]);
  const pngBytes = fs.readFileSync(await png.path());
  assert.deepEqual([...pngBytes.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  fs.copyFileSync(await png.path(), artifact("australia-export.png"));
});

test("the SIMD128 build of the worker (for browsers without relaxed SIMD) gives the native tool's numbers too", async () => {
  const p = await chromium.context.newPage();
  try {
    await p.goto(`${server.base}?simd=baseline&lens_workers=1`);
    await waitForModel(p);
    assert.match(await p.textContent("#model-info"), /lens threads: 2 · SIMD128$/);
    // Fast precision in this build is the f32 lens: the exact figure.
    await p.fill("#user", QUESTION);
    await runLens(p);
    const [download] = await Promise.all([p.waitForEvent("download"), p.click("#export-json")]);
    const exported = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
    assert.deepEqual(exported.ids, native.ids);
    for (let r = 0; r < native.n_rows; r++) {
      for (let q = 0; q < native.ids.length; q++) {
        assert.ok(Math.abs(exported.entropy[r][q] - native.entropy[r][q]) < 0.01, `entropy (${r}, ${q})`);
        const [a, b] = native.top_probs[r][q];
        if (a - b > 1e-3) assert.equal(exported.top_ids[r][q][0], native.top_ids[r][q][0], `top-1 (${r}, ${q})`);
      }
    }
  } finally {
    await p.close();
  }
});

test("fast precision with the lens product in 8-bit integers stays within its bar of the exact figure", async () => {
  // The integer product is asked for: left to measure, the worker takes it only where it is faster.
  const p = await chromium.context.newPage();
  try {
    await p.goto(`${server.base}?lens_workers=1&fast_lens=int8`);
    await waitForModel(p);
    assert.match(await p.textContent("#model-info"), /relaxed SIMD · fast lens in 8-bit integers$/);
    await p.selectOption("#precision", "fast");
    await p.fill("#user", QUESTION);
    await runLens(p);
    const [download] = await Promise.all([p.waitForEvent("download"), p.click("#export-json")]);
    const fast = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
    assert.deepEqual(fast.ids, native.ids);
    const errors = [];
    let [agree, compared] = [0, 0];
    for (let r = 0; r < native.n_rows; r++) {
      for (let q = 0; q < native.ids.length; q++) {
        errors.push(Math.abs(fast.entropy[r][q] - native.entropy[r][q]));
        const [a, b] = native.top_probs[r][q];
        if (a - b > 0.02) {
          compared++;
          if (fast.top_ids[r][q][0] === native.top_ids[r][q][0]) agree++;
        }
      }
    }
    errors.sort((a, b) => a - b);
    const median = errors[errors.length >> 1];
    console.log(`fast in the browser: median |ΔH| ${median.toFixed(4)} nats, top-1 ${agree}/${compared}`);
    // Not the exact figure (the integer product is at work), but within fast precision's bar.
    assert.ok(errors[errors.length - 1] > 1e-4, "the integer product ran");
    assert.ok(median <= 0.05, `median entropy error ${median}`);
    assert.ok(agree / compared >= 0.97, `top-1 agreement ${agree}/${compared}`);
  } finally {
    await p.close();
  }
});

test("a lens helper that stops answering is given up: the run ends with a notice and the native numbers", async () => {
  const p = await chromium.context.newPage();
  const workers = [];
  let givenUp = 0;
  p.on("worker", (w) => workers.push(w));
  p.on("console", (m) => { if (m.text().includes("lens helper given up")) givenUp++; });
  try {
    await p.goto(`${server.base}?lens_workers=1`);
    await waitForModel(p);
    assert.ok(workers.length >= 2, `the model worker and its helper (${workers.length} workers seen)`);
    // The helper is the worker the model worker started; `close()` ends it without an error event,
    // so only the coordinator's deadline can notice.
    await workers[workers.length - 1].evaluate(() => self.close());
    await p.fill("#user", QUESTION);
    await runLens(p);
    assert.match(await p.textContent("#notice"), /lens helper worker stopped answering.*one worker fewer/);
    const [download] = await Promise.all([p.waitForEvent("download"), p.click("#export-json")]);
    const exported = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
    for (let r = 0; r < native.n_rows; r++) {
      for (let q = 0; q < native.ids.length; q++) {
        assert.ok(Math.abs(exported.entropy[r][q] - native.entropy[r][q]) < 0.01, `entropy (${r}, ${q})`);
      }
    }
    // The next run goes on without it, rather than giving it up again.
    await runLens(p);
    assert.equal(givenUp, 1);
  } finally {
    await p.close();
  }
});

test("token strings are text, never HTML", async () => {
  await page.click("#mode-raw");
  const hostile = 'Say <img src=x onerror="window.__xss=1"> and <b>bold</b>';
  await page.fill("#raw", hostile);
  await runLens(page);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.equal(await page.locator("#tokens img, #tokens b, #figure img").count(), 0);
  assert.match(await page.textContent("#tokens"), /<img/);
  await page.click("#mode-chat");
});

test("a corrupt file gives an error message and a following valid run still works", async () => {
  await page.setInputFiles("#model-file", { name: "corrupt.gguf", mimeType: "application/octet-stream", buffer: Buffer.from("this is not a model at all") });
  await page.waitForSelector("#error", { timeout: TIMEOUT });
  assert.match(await page.textContent("#error"), /not a GGUF file/);
  await page.screenshot({ path: artifact("corrupt-file.png") });

  const truncated = fs.readFileSync(MODEL).subarray(0, 5_000_000);
  await page.setInputFiles("#model-file", { name: "truncated.gguf", mimeType: "application/octet-stream", buffer: truncated });
  await page.waitForFunction(() => /truncated/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: TIMEOUT });

  // The model that was loaded is still there and runs.
  await waitForModel(page);
  await page.fill("#user", QUESTION);
  await runLens(page);
  assert.equal(Number(await page.getAttribute("#figure", "data-n-positions")), native.ids.length);
  const tip = await hoverCell(page, 30, native.ids.length - 1);
  assert.equal(tip.top1Id, native.top_ids[30][native.ids.length - 1][0]);
});

test("a file whose chat template exhausts memory kills the worker once; the previous model comes back and runs", async () => {
  // A well-formed SmolLM2 whose template doubles a string until wasm32's 4 GB run out.
  const bomb = "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}";
  const hostile = artifact("template-bomb.gguf");
  fs.writeFileSync(hostile, withString(fs.readFileSync(MODEL), "tokenizer.chat_template", bomb));
  await page.setInputFiles("#model-file", hostile);
  await page.waitForFunction(() => /previous model is back/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: TIMEOUT });
  await waitForModel(page);
  assert.match(await page.textContent("#model-info"), /SmolLM2/);
  await page.screenshot({ path: artifact("template-bomb.png") });
  // The message stays, the page is not stuck, and the model it put back gives the native figure.
  assert.match(await page.textContent("#error"), /previous model is back/);
  await page.fill("#user", QUESTION);
  await runLens(page);
  const tip = await hoverCell(page, 30, native.ids.length - 1);
  assert.equal(tip.top1Id, native.top_ids[30][native.ids.length - 1][0]);
});

test("a link to a file that crashes the worker asks first, crashes it once, and never loops", async () => {
  // The template-bomb file of the test above, published beside the page.
  const bomb = `${server.base}test-reports/template-bomb.gguf`;
  const linked = await chromium.context.newPage();
  await linked.goto(`${server.base}?model=${encodeURIComponent(bomb)}&chat=${encodeURIComponent(QUESTION)}`);
  await linked.locator("#link-model-load").waitFor({ timeout: 30_000 });
  const asked = () => server.requests.filter((r) => r === "/test-reports/template-bomb.gguf").length;
  assert.equal(asked(), 0, "nothing downloaded before the visitor agrees");
  await linked.click("#link-model-load");
  await linked.waitForFunction(() => /stopped while loading this model.*not loaded again/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: TIMEOUT });
  // Long enough for a loop to show itself: the file is fetched once, and nothing is loading.
  await linked.waitForTimeout(5000);
  assert.equal(asked(), 1, "the crashing file was fetched once");
  assert.equal(await linked.locator("#progress").count(), 0, "nothing is loading");
  assert.match(await linked.textContent("#model-info"), /no model loaded/);
  await linked.close();
});

test("a file whose chat template never finishes is stopped by Cancel; the previous model comes back", async () => {
  // A repeat of 10^9 items joined to text: minijinja folds it while compiling, beyond fuel's reach.
  const endless = "{{ (10**9 * ['role']) ~ 'x' }}";
  const hostile = artifact("template-endless.gguf");
  fs.writeFileSync(hostile, withString(fs.readFileSync(MODEL), "tokenizer.chat_template", endless));
  await page.setInputFiles("#model-file", hostile);
  await page.locator("#cancel-load").waitFor({ timeout: 30_000 });
  await page.waitForTimeout(3000);
  await page.click("#cancel-load");
  await page.waitForFunction(() => /did not stop loading when asked.*previous model is back/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: TIMEOUT });
  await waitForModel(page);
  assert.match(await page.textContent("#model-info"), /SmolLM2/);
  await page.fill("#user", QUESTION);
  await runLens(page);
  const tip = await hoverCell(page, 30, native.ids.length - 1);
  assert.equal(tip.top1Id, native.top_ids[30][native.ids.length - 1][0]);
});

test("a second page load uses the stored model without fetching it again", async () => {
  const gguf = (r) => r.endsWith(".gguf");
  assert.ok(server.requests.some(gguf), "the first load fetched the model");
  const before = server.requests.length;
  const second = await chromium.context.newPage();
  await second.goto(server.base);
  await waitForModel(second);
  const later = server.requests.slice(before);
  assert.ok(!later.some(gguf), `no model request on the second load: ${later.join(" ")}`);
  assert.match(await second.textContent("#notice"), /browser storage/);
  assert.match(await second.textContent("#stored-models summary"), /\(1\)/);
  await second.close();
});

test("the page URL reproduces the view, and a run can be cancelled", async () => {
  const url = page.url();
  assert.match(url, /chat=What/);
  const linked = await chromium.context.newPage();
  await linked.goto(url);
  await linked.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  assert.equal(Number(await linked.getAttribute("#figure", "data-n-positions")), native.ids.length);

  // Cancel mid-answer: the page says so and the next run works.
  await linked.fill("#answer", "200");
  await linked.click("#run");
  await linked.click("#cancel-run");
  await linked.waitForFunction(() => /cancelled|stopped/.test(document.querySelector("#notice")?.textContent ?? ""), null, { timeout: 20_000 });
  await linked.fill("#answer", "0");
  await runLens(linked);
  await linked.close();
});

test("a run cancelled during the lens leaves nothing behind: the next run equals the native tool", async () => {
  await page.click("#mode-chat");
  await page.fill("#user", QUESTION);
  await page.fill("#answer", "0");
  await page.click("#run");
  // Cancel while the helper is computing the second row group; its late reply must not be merged.
  await page.waitForFunction(() => Number(document.querySelector("#figure")?.dataset.rowsDone) > 0, null, { timeout: TIMEOUT });
  await page.click("#cancel-run");
  await page.waitForFunction(() => /cancelled|stopped/.test(document.querySelector("#notice")?.textContent ?? ""), null, { timeout: 20_000 });
  await runLens(page);
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-json")]);
  const got = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
  for (let r = 0; r < native.n_rows; r++) {
    for (let p = 0; p < native.ids.length; p++) {
      assert.ok(Math.abs(got.entropy[r][p] - native.entropy[r][p]) < 0.01, `entropy (${r}, ${p})`);
    }
  }
});

test("tracked tokens, other colourings, and the model's answer extending the figure", async () => {
  const tracked = runNative(["--chat", QUESTION, "--track", " Canberra", " Sydney"]);
  await page.fill("#user", QUESTION);
  await page.fill("#track", " Canberra, Sydney");
  await page.fill("#answer", "12");
  await runLens(page);
  const n = Number(await page.getAttribute("#figure", "data-n-positions"));
  assert.ok(n > native.ids.length, `the answer extends the figure: ${n} positions`);
  assert.match(await page.textContent("#tokens"), /Canberra/);

  const last = native.ids.length - 1; // the last prompt position: where the answer is decided
  await page.selectOption("#metric", "rank:0");
  let tip = await hoverCell(page, 30, last);
  assert.match(tip.text, /Rank of _Canberra/);
  assert.equal(Number(await page.getAttribute("#tooltip", "data-value")), tracked.tracked[0].rank[30][last]);
  await page.locator("#figure").screenshot({ path: artifact("rank-canberra.png") });

  await page.selectOption("#metric", "prob:1");
  tip = await hoverCell(page, 20, last);
  const p = Number(await page.getAttribute("#tooltip", "data-value"));
  assert.ok(Math.abs(p - tracked.tracked[1].prob[20][last]) < 1e-3, `P(Sydney) ${p}`);

  await page.selectOption("#metric", "kl");
  await hoverCell(page, 30, last);
  assert.equal(Number(await page.getAttribute("#tooltip", "data-value")), 0);
  await page.selectOption("#metric", "top1");
  await hoverCell(page, 30, last);
  assert.ok(Math.abs(Number(await page.getAttribute("#tooltip", "data-value")) - tracked.top_probs[30][last][0]) < 1e-3);
  await page.locator("#figure").screenshot({ path: artifact("top1-probability.png") });
  await page.selectOption("#metric", "entropy");
  await page.fill("#track", "");
  await page.fill("#answer", "0");
});

test("the lens inside blocks: 2L+1 rows named 1a, 1m, …, equal to the native tool", async () => {
  const inside = runNative(["--chat", QUESTION, "--inside-blocks"]);
  assert.equal(inside.n_rows, 2 * (native.n_rows - 1) + 1);
  await page.fill("#user", QUESTION);
  await page.check("#inside-blocks");
  await runLens(page);
  assert.equal(Number(await page.getAttribute("#figure", "data-n-rows")), inside.n_rows);
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-json")]);
  const exported = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
  assert.equal(exported.inside_blocks, true);
  for (let r = 0; r < inside.n_rows; r++) {
    for (let p = 0; p < inside.ids.length; p++) {
      assert.ok(Math.abs(exported.entropy[r][p] - inside.entropy[r][p]) < 0.01, `entropy (${r}, ${p})`);
    }
  }
  await page.focus("#magnified");
  await page.keyboard.press("Enter");
  const zoom = page.locator("#column-zoom");
  await zoom.waitFor();
  assert.equal(await zoom.locator('tr[data-layer="23"] th').textContent(), "12a");
  assert.equal(await zoom.locator('tr[data-layer="24"] th').textContent(), "12m");
  await page.locator("#figure").screenshot({ path: artifact("inside-blocks.png") });
  await page.keyboard.press("Escape");
  await page.uncheck("#inside-blocks");
});

test("a long prompt shows the positions in view first, then fills in by chunks to the native numbers", async () => {
  const raw = Array.from({ length: 100 }, (_, i) => `Line ${i}: the ${["red", "blue", "green"][i % 3]} fox jumps over ${i * 7} lazy dogs.`).join("\n");
  const long = runNative(["--raw", raw]);
  const n = long.ids.length;
  assert.ok(n > 1000, `${n} tokens`);
  await page.click("#mode-raw");
  await page.fill("#raw", raw);
  await page.fill("#answer", "0");
  await page.click("#run");
  await page.waitForFunction(() => Number(document.querySelector("#figure")?.dataset.cellsDone) > 0, null, { timeout: TIMEOUT, polling: 20 });
  // The first part is every row at the last 64 positions: the magnified range, which shows the tail.
  assert.equal(Number(await page.getAttribute("#figure", "data-cells-done")), native.n_rows * 64);
  const [start, end] = (await page.getAttribute("#figure", "data-range")).split(",").map(Number);
  assert.ok(end === n && start >= n - 64, `range ${start}..${end} is inside the first part`);
  // The user brings the start into view (a click at the overview's left edge): those positions come
  // next, once the part under way is done, long before the parts between them and the tail.
  const overview = await page.locator("#overview").boundingBox();
  await page.mouse.click(overview.x + 2, overview.y + overview.height / 2);
  const doneThen = await (await page.waitForFunction(() => {
    const f = document.querySelector("#figure");
    return f.dataset.rangeDone === "true" && f.dataset.range.startsWith("0,") && Number(f.dataset.cellsDone);
  }, null, { timeout: TIMEOUT, polling: 20 })).jsonValue();
  const width = Number((await page.getAttribute("#figure", "data-range")).split(",")[1]);
  assert.ok(doneThen <= native.n_rows * (64 + 512 + width) && doneThen < native.n_rows * n,
    `the positions in view (0..${width}) arrived with ${doneThen} of ${native.n_rows * n} cells done`);
  await page.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-json")]);
  const exported = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
  for (let r = 0; r < long.n_rows; r++) {
    for (let p = 0; p < n; p++) {
      assert.ok(Math.abs(exported.entropy[r][p] - long.entropy[r][p]) < 0.01, `entropy (${r}, ${p})`);
    }
  }
  await page.click("#mode-chat");
});

test("a model too large even to stream is refused before any download; an 8B one is offered", async () => {
  // Llama 3.1 8B (4.92 GB) is larger than the tab holds, but loads streamed: offered as any other.
  const option = await page.textContent('#preset option[value="llama3.1-8b-q4km"]');
  assert.doesNotMatch(option, /too large/, option);
  assert.match(option, /streamed: lens only/, option);
  server.claimed["/huge.gguf"] = 60_000_000_000;
  const linked = await chromium.context.newPage();
  await linked.goto(`${server.base}?model=${encodeURIComponent(`${server.base}huge.gguf`)}`);
  await linked.waitForFunction(() => /Loupe reads files up to/.test(document.querySelector("#link-model")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.match(await linked.textContent("#link-model"), /60\.00 GB/);
  assert.ok(await linked.isDisabled("#link-model-load"));
  assert.ok(!server.requests.includes("/huge.gguf"), "only asked for its size");
  await linked.close();
});

test("a failed download says so and loses nothing", async () => {
  await page.fill("#model-url", `${server.base}models/missing.gguf`);
  await page.click("#load-url");
  await page.waitForFunction(() => /HTTP 404/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  await waitForModel(page);
  await runLens(page);
});

test("a download that is not a model says so and is not kept", async () => {
  await page.fill("#model-url", `${server.base}manifest.webmanifest`);
  await page.click("#load-url");
  await page.waitForFunction(() => /not a GGUF file/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  await waitForModel(page);
  const kept = await page.evaluate(async () => {
    const urls = [];
    for (const name of await caches.keys()) {
      if (name.startsWith("loupe-shell-")) continue;
      for (const r of await (await caches.open(name)).keys()) urls.push(r.url);
    }
    return urls;
  });
  assert.ok(!kept.some((u) => u.endsWith("manifest.webmanifest")), `not stored: ${kept.join(" ")}`);
});

test("a stored model that no longer loads is removed, with a message", async () => {
  const url = `${server.base}test-models/damaged.gguf`;
  await page.evaluate(async (u) => {
    const store = await caches.open("loupe-models-v1");
    await store.put(u, new Response("GGUF, but only the magic", { headers: { "x-loupe-bytes": "24" } }));
  }, url);
  await page.fill("#model-url", url);
  await page.click("#load-url");
  await page.waitForFunction(() => /was removed/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.equal(await page.evaluate(async (u) => Boolean(await (await caches.open("loupe-models-v1")).match(u)), url), false);
  await waitForModel(page);
});

test("stored models can be listed and deleted", async () => {
  await page.click("#stored-models summary");
  assert.match(await page.textContent("#stored-models summary"), /\(1\)/);
  assert.match(await page.textContent("#stored-models li"), /SmolLM2-135M-Instruct\.Q4_1\.gguf · 98 MB/);
  await page.click("#clear-storage");
  await page.waitForFunction(() => /\(0\)/.test(document.querySelector("#stored-models summary")?.textContent ?? ""));
});

test("a download whose connection drops resumes where it stopped, or restarts where the server ignores ranges", async () => {
  const file = "SmolLM2-135M-Instruct.Q4_1.gguf";
  const expected = crypto.createHash("sha256").update(fs.readFileSync(MODEL)).digest("hex");
  for (const ranges of [true, false]) {
    const url = `${server.base}test-models/${file}?ranges=${ranges}`;
    const cutAfter = 20_000_000;
    server.flaky[`/test-models/${file}`] = { cuts: 2, after: cutAfter, ranges };
    const before = server.ranged.length;
    await page.fill("#model-url", url);
    await page.click("#load-url");
    await page.waitForFunction(() => /reconnecting/.test(document.querySelector("#progress")?.textContent ?? ""), null, { timeout: 60_000 });
    // Stored only once it has parsed, so a stored entry means the whole file arrived and loaded.
    const storedYet = (u) => page.evaluate(async (u) => Boolean(await (await caches.open("loupe-models-v1")).match(u)), u);
    for (const start = Date.now(); !(await storedYet(url)); await page.waitForTimeout(500)) {
      assert.ok(Date.now() - start < TIMEOUT, "the download is stored");
      assert.equal(await page.evaluate(() => document.querySelector("#error")?.textContent ?? ""), "", "no error");
    }
    await waitForModel(page);
    const asked = server.ranged.slice(before);
    // Two drops, two requests for the rest. With ranges, the third answer starts where the second
    // stopped; without, the second answer restarted at byte 0 and dropped before it got further.
    assert.equal(asked.length, 2, `two requests for the rest: ${asked.join(", ")}`);
    const starts = asked.map((a) => Number(/bytes=(\d+)-/.exec(a)[1]));
    assert.ok(starts[0] > 0 && (ranges ? starts[1] > starts[0] : starts[1] === starts[0]), `each asks from where the body stopped: ${starts} (ranges ${ranges})`);
    const stored = await page.evaluate(async (u) => {
      const bytes = await (await (await caches.open("loupe-models-v1")).match(u)).arrayBuffer();
      return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
    }, url);
    assert.equal(stored, expected, `the stored file is the served file (ranges ${ranges})`);
    await page.evaluate(async (u) => (await caches.open("loupe-models-v1")).delete(u), url);
  }
  // A file that changed on the server between the drop and the reconnection is refused, not spliced.
  const url = `${server.base}test-models/${file}?replaced`;
  server.flaky[`/test-models/${file}`] = { cuts: 1, after: 20_000_000, replaced: true };
  await page.fill("#model-url", url);
  await page.click("#load-url");
  await page.waitForFunction(() => /changed on the server/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 60_000 });
  assert.equal(await page.evaluate(async (u) => Boolean(await (await caches.open("loupe-models-v1")).match(u)), url), false);
  delete server.flaky[`/test-models/${file}`];
  await waitForModel(page);
  await runLens(page);
});

test("a link to a model that is not a preset asks first, showing host and size, then loads and runs it", async () => {
  const linked = await chromium.context.newPage();
  const file = "qwen2.5-coder-0.5b-instruct.gguf";
  const model = `${server.base}test-models/${file}`;
  const before = server.requests.length;
  await linked.goto(`${server.base}?model=${encodeURIComponent(model)}&chat=${encodeURIComponent(QUESTION)}`);
  const ask = linked.locator("#link-model");
  await ask.waitFor({ timeout: 30_000 });
  await linked.waitForFunction(() => document.querySelector("#link-model")?.dataset.bytes, null, { timeout: 30_000 });
  assert.equal(await ask.getAttribute("data-host"), new URL(server.base).host);
  assert.equal(Number(await ask.getAttribute("data-bytes")), fs.statSync(path.join(ROOT, "models", file)).size);
  await linked.waitForTimeout(1000);
  assert.match(await linked.textContent("#model-info"), /no model loaded/);
  assert.ok(!server.requests.slice(before).includes(`/test-models/${file}`), "nothing downloaded before the user agrees");
  await ask.screenshot({ path: artifact("link-model-question.png") });
  await linked.click("#link-model-load");
  await linked.waitForFunction(() => /qwen2/.test(document.querySelector("#model-info")?.textContent ?? ""), null, { timeout: TIMEOUT });
  // The link's question runs once the model is in.
  await linked.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  await linked.close();
});

test("Qwen2.5 and Gemma 3 in the browser give the native tool's numbers", async () => {
  for (const [file, args] of [
    ["gemma-3-270m-q4_k_m.gguf", ["--raw", "The Eiffel Tower is in the city of"]],
    ["gemma-3-270m-q4_k_m.gguf", ["--chat", QUESTION]],
    ["qwen2.5-coder-0.5b-instruct.gguf", ["--chat", QUESTION]],
  ]) {
    const expected = runNative(args, path.join(ROOT, "models", file));
    if (!(await page.textContent("#model-info")).includes(expected.architecture === "gemma3" ? "gemma3" : "qwen2")) {
      await page.fill("#model-url", `${server.base}test-models/${file}`);
      await page.click("#load-url");
      await page.waitForFunction((arch) => (document.querySelector("#model-info")?.textContent ?? "").includes(arch) && !document.querySelector("#progress"),
        expected.architecture, { timeout: TIMEOUT });
    }
    if (args[0] === "--raw") {
      await page.click("#mode-raw");
      await page.fill("#raw", args[1]);
    } else {
      await page.click("#mode-chat");
      await page.fill("#user", args[1]);
    }
    await runLens(page);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-json")]);
    const got = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
    assert.equal(got.text, expected.text, `${file}: text`);
    assert.deepEqual(got.ids, expected.ids, `${file}: ids`);
    let worst = 0;
    for (let r = 0; r < expected.n_rows; r++) {
      for (let p = 0; p < expected.ids.length; p++) {
        worst = Math.max(worst, Math.abs(got.entropy[r][p] - expected.entropy[r][p]));
        const [a, b] = expected.top_probs[r][p];
        if (a - b > 1e-3) assert.equal(got.top_ids[r][p][0], expected.top_ids[r][p][0], `${file}: top-1 at (${r}, ${p})`);
      }
    }
    assert.ok(worst < 0.01, `${file}: entropy differs by ${worst}`);
    await page.locator("#figure").screenshot({ path: artifact(`${file}-${args[0].slice(2)}.png`) });
  }
  await page.click("#mode-chat");
});

test("a report from the command line opens in the page with the native numbers; a foreign file is refused", async () => {
  const out = artifact("cli-report.json");
  execFileSync(LOUPE, ["--model", MODEL, "--chat", QUESTION, "--track", " Canberra", "--json", out], { stdio: "pipe" });
  const report = JSON.parse(fs.readFileSync(out, "utf8"));
  await page.setInputFiles("#open-report", out);
  await page.waitForFunction(() => /opened cli-report\.json/.test(document.querySelector("#notice")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.equal(await page.getAttribute("#figure", "data-complete"), "true");
  assert.equal(Number(await page.getAttribute("#figure", "data-n-positions")), report.ids.length);
  const last = report.ids.length - 1;
  for (const [row, pos] of [[30, last], [12, last - 4], [0, last - 9]]) {
    const tip = await hoverCell(page, row, pos);
    assert.equal(tip.top1Id, report.top_ids[row][pos][0], `top-1 at (${row}, ${pos})`);
    assert.ok(Math.abs(tip.entropy - report.entropy[row][pos]) < 1e-4, `entropy at (${row}, ${pos})`);
  }
  await page.selectOption("#metric", "rank:0");
  await hoverCell(page, 30, last);
  assert.equal(Number(await page.getAttribute("#tooltip", "data-value")), report.tracked[0].rank[30][last]);
  await page.locator("#figure").screenshot({ path: artifact("opened-report.png") });
  await page.selectOption("#metric", "entropy");

  await page.setInputFiles("#open-report", { name: "foreign.json", mimeType: "application/json", buffer: Buffer.from('{"hello": 1}') });
  await page.waitForFunction(() => /cannot open foreign\.json/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.equal(Number(await page.getAttribute("#figure", "data-n-positions")), report.ids.length, "the opened figure stays");

  // A static site publishes figures by link: `?report=` shows one without loading any model.
  const published = await chromium.context.newPage();
  const before = server.requests.length;
  await published.goto(`${server.base}?report=test-reports/cli-report.json`);
  await published.waitForFunction(() => /opened test-reports\/cli-report\.json/.test(document.querySelector("#notice")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.equal(Number(await published.getAttribute("#figure", "data-n-positions")), report.ids.length);
  assert.equal(await published.getAttribute("#figure", "data-complete"), "true");
  assert.match(await published.textContent("#model-info"), /no model loaded/);
  assert.ok(!server.requests.slice(before).some((p) => p.endsWith(".gguf")), "no model fetched");
  await published.goto(`${server.base}?report=test-reports/missing.json`);
  await published.waitForFunction(() => /cannot open .*HTTP 404/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  // A report on another host is not fetched from a link (the same server under another origin).
  const elsewhere = new URL("test-reports/cli-report.json", server.base.replace("127.0.0.1", "localhost")).href;
  const asked = server.requests.length;
  await published.goto(`${server.base}?report=${encodeURIComponent(elsewhere)}`);
  await published.waitForFunction(() => /only reports published beside this page/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.ok(!server.requests.slice(asked).some((p) => p.includes("cli-report")), "the other host was not asked");
  await published.close();
});

test("the keyboard walks the figure and announces each cell; Enter opens the column, Escape closes it", async () => {
  // The figure on screen is the Australia report opened above.
  const n = Number(await page.getAttribute("#figure", "data-n-positions"));
  assert.equal(n, native.ids.length);
  await page.focus("#magnified");
  await page.keyboard.press("ArrowDown"); // from the output row at the last position
  await page.keyboard.press("ArrowLeft");
  const said = await page.textContent("#focus-announce");
  assert.match(said, new RegExp(`^layer 29, position ${n - 2} `));
  const entropy = Number(/entropy ([0-9.]+) nats/.exec(said)[1]);
  assert.ok(Math.abs(entropy - native.entropy[29][n - 2]) < 0.006, `${said} vs ${native.entropy[29][n - 2]}`);
  await page.keyboard.press("Enter");
  assert.equal(Number(await page.getAttribute("#column-zoom", "data-pos")), n - 2);
  await page.keyboard.press("Escape");
  await page.locator("#column-zoom").waitFor({ state: "detached" });
  await page.selectOption("#palette", "viridis");
  await page.locator("#figure").screenshot({ path: artifact("viridis.png") });
  await page.selectOption("#palette", "diverging");
});
