// End-to-end tests of the built app (dist/) in real headless Chromium with the real SmolLM2 model,
// checked against the native `loupe` tool run on the same prompt.
//
// The tests share one browser and server, and run in any order: a test that changes what a page
// shows opens its own (`freshPage`, the bundled model loaded from the browser's storage); the tests
// that only read the Australia figure share one page (`australia`); a test that needs a file or a
// report writes it itself; the two that count stored models use a browser profile of their own.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import crypto from "node:crypto";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { serve, browser, artifact, ROOT, ARTIFACTS, waitForModel, openPage, once } from "./harness.mjs";
import { withString } from "./gguf.mjs";
import { exportJson, assertSameLens, lensDifferences, hoverCell, assertSameTooltips } from "./lens-check.mjs";

const MODEL = path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
const QUESTION = "What is the capital of Australia?";
const LOUPE = path.join(ROOT, "target/release/loupe");
const TIMEOUT = 300_000;
// Hostile chat templates in otherwise well-formed SmolLM2 files. One doubles a string until wasm32's
// 4 GB run out; one repeats 10^9 items joined to text, which minijinja folds while compiling,
// beyond fuel's reach.
const BOMB = "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}";
const ENDLESS = "{{ (10**9 * ['role']) ~ 'x' }}";

/// `page` is the first page: it fetched the bundled model (and stored it for the others).
let server, chromium, page, native;
/// SmolLM2's output row (the last row: the model's own output), from the native report.
let output;

function runNative(args, model = MODEL) {
  const out = artifact(`native-${Date.now()}.json`);
  execFileSync(LOUPE, ["--model", model, ...args, "--json", out], { stdio: "pipe" });
  return JSON.parse(fs.readFileSync(out, "utf8"));
}

async function runLens(p) {
  await p.click("#run");
  await p.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
}

/// A page of test `t`'s own with the bundled model loaded; by default with one helper worker even
/// on a 2-core machine, so the vocabulary split is what these tests check.
function freshPage(t, query = "lens_workers=1", options = {}) {
  return openPage(t, chromium.context, `${server.base}?${query}`, options);
}

/// The first page with the Australia question run on it, once: the tests that only read that
/// figure (its cells, tokens, column zoom, exports, link) share it.
const australia = once(async () => {
  await page.fill("#user", QUESTION);
  await runLens(page);
  return page;
});

/// A copy of SmolLM2 whose chat template is `template`, written to tests/artifacts/ (which the
/// server publishes as /test-reports/).
function hostileModel(name, template) {
  const file = artifact(name);
  fs.writeFileSync(file, withString(fs.readFileSync(MODEL), "tokenizer.chat_template", template));
  return file;
}

/// The native tool's report of the Australia question tracking " Canberra", written once to
/// tests/artifacts/cli-report.json (published as /test-reports/cli-report.json).
const cliReport = once(() => {
  const file = artifact("cli-report.json");
  execFileSync(LOUPE, ["--model", MODEL, "--chat", QUESTION, "--track", " Canberra", "--json", file], { stdio: "pipe" });
  return { file, report: JSON.parse(fs.readFileSync(file, "utf8")) };
});

/// Opens the CLI report in `p` as a user does ("Open a saved figure"); returns the report.
async function openReport(p) {
  const { file, report } = cliReport();
  await p.setInputFiles("#open-report", file);
  await p.waitForFunction(() => /opened cli-report\.json/.test(document.querySelector("#notice")?.textContent ?? ""), null, { timeout: 30_000 });
  return report;
}

/// A browser of test `t`'s own (a fresh profile: nothing stored yet) with a page that fetched the
/// bundled model and stored it; `fetched` is what the server was asked for meanwhile.
async function ownBrowserWithStoredModel(t) {
  const own = await browser();
  t.after(() => own.close());
  const from = server.requests.length;
  const first = await openPage(t, own.context, `${server.base}?lens_workers=1`);
  // The model is stored once it has parsed, after the page says it loaded; the storage list says when.
  await first.waitForFunction(() => !/\(0\)/.test(document.querySelector("#stored-models summary")?.textContent ?? "(0)"), null, { timeout: TIMEOUT });
  return { context: own.context, first, fetched: server.requests.slice(from) };
}

/// Keeps what each worker the page starts sends it, in `window.__workerMessages` (one list per
/// worker, in the order they started), so a test can wait for a worker's answer.
function recordWorkerMessages(p) {
  return p.addInitScript(() => {
    const Native = window.Worker;
    window.__workerMessages = [];
    window.Worker = function Worker(...args) {
      const worker = new Native(...args);
      const messages = [];
      window.__workerMessages.push(messages);
      worker.addEventListener("message", (e) => messages.push(typeof e.data === "string" ? e.data : ""));
      return worker;
    };
    window.Worker.prototype = Native.prototype;
  });
}

before(async () => {
  // The other test models, served beside the app so the page can load them by URL.
  server = await serve(undefined, { "/test-models/": path.join(ROOT, "models"), "/test-reports/": ARTIFACTS });
  chromium = await browser();
  native = runNative(["--chat", QUESTION]);
  output = native.n_rows - 1;
  page = await chromium.context.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
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
  const p = await australia();
  await p.locator("#figure").screenshot({ path: artifact("australia-figure.png") });
  assert.equal(Number(await p.getAttribute("#figure", "data-n-rows")), native.n_rows);
  assert.equal(Number(await p.getAttribute("#figure", "data-n-positions")), native.ids.length);
  const count = await p.textContent("#tokens .count");
  assert.match(count, new RegExp(`^${native.ids.length} tokens`));

  // Several cells: the tooltip's top-1 and entropy equal the native tool's.
  const last = native.ids.length - 1;
  await assertSameTooltips(p, native, [[output, last], [0, last], [15, last - 3], [20, last - 1], [29, last - 6], [5, last - 10]]);
  await p.locator("#figure").screenshot({ path: artifact("australia-tooltip.png") });
});

test("chat-template tokens are boxed", async () => {
  const p = await australia();
  const boxed = (await p.getAttribute("#figure", "data-template-positions")).split(",").map(Number);
  const expected = native.token_info.map((t, i) => (t.template ? i : -1)).filter((i) => i >= 0);
  assert.deepEqual(boxed, expected);
  const pieces = boxed.map((i) => native.tokens[i]);
  for (const piece of ["<|im_start|>", "<|im_end|>", "ass", "istant", "user", "system"]) {
    assert.ok(pieces.includes(piece), `${piece} is boxed`);
  }
  // The user's question is not.
  const question = native.tokens.indexOf("ĠAustralia");
  assert.ok(!boxed.includes(question));
  assert.equal(await p.locator("#tokens .tok.template").count(), expected.length);
});

test("the column zoom lists every layer", async () => {
  const p = await australia();
  const [, end] = (await p.getAttribute("#figure", "data-range")).split(",").map(Number);
  const pos = end - 1;
  await hoverCell(p, 10, pos);
  await p.mouse.down();
  await p.mouse.up();
  const zoom = p.locator("#column-zoom");
  await zoom.waitFor();
  assert.equal(Number(await zoom.getAttribute("data-pos")), pos);
  assert.equal(await zoom.locator("tr[data-layer]").count(), native.n_rows);
  // At the last position the output layer's top-1 is "The" (the start of the answer).
  assert.equal(pos, native.ids.length - 1);
  assert.equal(native.top_tokens[output][pos][0], "The");
  assert.equal(await zoom.locator(`tr[data-layer="${output}"] .cand code`).first().textContent(), "The");
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
  // The shared page as it was: no column open.
  await zoom.locator("button.close").click();
  await zoom.waitFor({ state: "detached" });
});

test("the exported JSON matches the native tool's JSON", async () => {
  const p = await australia();
  const exported = await exportJson(p);
  for (const key of ["model", "text", "ids", "tokens", "n_rows"]) assert.deepEqual(exported[key], native[key], key);
  assert.deepEqual(exported.prompt, native.prompt);
  assertSameLens(exported, native, { tokens: true });
  const [svg] = await Promise.all([p.waitForEvent("download"), p.click("#export-svg")]);
  const svgText = fs.readFileSync(await svg.path(), "utf8");
  assert.match(svgText, /^<svg /);
  assert.match(svgText, /Entropy \(nats\)/);
  assert.match(svgText, /&lt;\|im_start\|&gt;/);
  fs.copyFileSync(await svg.path(), artifact("australia.svg"));
  const [png] = await Promise.all([p.waitForEvent("download"), p.click("#export-png")]);
  const pngBytes = fs.readFileSync(await png.path());
  assert.deepEqual([...pngBytes.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  fs.copyFileSync(await png.path(), artifact("australia-export.png"));
});

test("the SIMD128 build of the worker (for browsers without relaxed SIMD) gives the native tool's numbers too", async (t) => {
  const p = await freshPage(t, "simd=baseline&lens_workers=1");
  assert.match(await p.textContent("#model-info"), /lens threads: 2 · SIMD128$/);
  // Fast precision in this build is the f32 lens: the exact figure.
  await p.fill("#user", QUESTION);
  await runLens(p);
  const exported = await exportJson(p);
  assert.deepEqual(exported.ids, native.ids);
  assertSameLens(exported, native);
});

test("fast precision with the lens product in 8-bit integers stays within its bar of the exact figure", async (t) => {
  // The integer product is asked for: left to measure, the worker takes it only where it is faster.
  const p = await freshPage(t, "lens_workers=1&fast_lens=int8");
  assert.match(await p.textContent("#model-info"), /relaxed SIMD · fast lens in 8-bit integers$/);
  await p.selectOption("#precision", "fast");
  await p.fill("#user", QUESTION);
  await runLens(p);
  const fast = await exportJson(p);
  assert.deepEqual(fast.ids, native.ids);
  const { errors, agree, compared } = lensDifferences(fast, native, { top1Gap: 0.02 });
  errors.sort((a, b) => a - b);
  const median = errors[errors.length >> 1];
  console.log(`fast in the browser: median |ΔH| ${median.toFixed(4)} nats, top-1 ${agree}/${compared}`);
  // Not the exact figure (the integer product is at work), but within fast precision's bar.
  assert.ok(errors[errors.length - 1] > 1e-4, "the integer product ran");
  assert.ok(median <= 0.05, `median entropy error ${median}`);
  assert.ok(agree / compared >= 0.97, `top-1 agreement ${agree}/${compared}`);
});

test("a lens helper that stops answering is given up: the run ends with a notice and the native numbers", async (t) => {
  const workers = [];
  let givenUp = 0;
  const p = await freshPage(t, "lens_workers=1", {
    prepare: (q) => {
      q.on("worker", (w) => workers.push(w));
      q.on("console", (m) => { if (m.text().includes("lens helper given up")) givenUp++; });
    },
  });
  assert.ok(workers.length >= 2, `the model worker and its helper (${workers.length} workers seen)`);
  // The helper is the worker the model worker started; `close()` ends it without an error event,
  // so only the coordinator's deadline can notice.
  await workers[workers.length - 1].evaluate(() => self.close());
  await p.fill("#user", QUESTION);
  await runLens(p);
  assert.match(await p.textContent("#notice"), /lens helper worker stopped answering.*one worker fewer/);
  assertSameLens(await exportJson(p), native, { top1Gap: null });
  // The next run goes on without it, rather than giving it up again.
  await runLens(p);
  assert.equal(givenUp, 1);
});

test("token strings are text, never HTML", async (t) => {
  const p = await freshPage(t);
  await p.click("#mode-raw");
  const hostile = 'Say <img src=x onerror="window.__xss=1"> and <b>bold</b>';
  await p.fill("#raw", hostile);
  await runLens(p);
  assert.equal(await p.evaluate(() => window.__xss), undefined);
  assert.equal(await p.locator("#tokens img, #tokens b, #figure img").count(), 0);
  assert.match(await p.textContent("#tokens"), /<img/);
});

test("a corrupt file gives an error message and a following valid run still works", async (t) => {
  const p = await freshPage(t);
  await p.setInputFiles("#model-file", { name: "corrupt.gguf", mimeType: "application/octet-stream", buffer: Buffer.from("this is not a model at all") });
  await p.waitForSelector("#error", { timeout: TIMEOUT });
  assert.match(await p.textContent("#error"), /not a GGUF file/);
  await p.screenshot({ path: artifact("corrupt-file.png") });

  const truncated = fs.readFileSync(MODEL).subarray(0, 5_000_000);
  await p.setInputFiles("#model-file", { name: "truncated.gguf", mimeType: "application/octet-stream", buffer: truncated });
  await p.waitForFunction(() => /truncated/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: TIMEOUT });

  // The model that was loaded is still there and runs.
  await waitForModel(p);
  await p.fill("#user", QUESTION);
  await runLens(p);
  assert.equal(Number(await p.getAttribute("#figure", "data-n-positions")), native.ids.length);
  const last = native.ids.length - 1;
  const tip = await hoverCell(p, output, last);
  assert.equal(tip.top1Id, native.top_ids[output][last][0]);
});

test("a file whose chat template exhausts memory kills the worker once; the previous model comes back and runs", async (t) => {
  const hostile = hostileModel("template-bomb.gguf", BOMB);
  const p = await freshPage(t);
  await p.setInputFiles("#model-file", hostile);
  await p.waitForFunction(() => /previous model is back/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: TIMEOUT });
  await waitForModel(p);
  assert.match(await p.textContent("#model-info"), /SmolLM2/);
  await p.screenshot({ path: artifact("template-bomb.png") });
  // The message stays, the page is not stuck, and the model it put back gives the native figure.
  assert.match(await p.textContent("#error"), /previous model is back/);
  await p.fill("#user", QUESTION);
  await runLens(p);
  const last = native.ids.length - 1;
  const tip = await hoverCell(p, output, last);
  assert.equal(tip.top1Id, native.top_ids[output][last][0]);
});

test("a link to a file that crashes the worker asks first, crashes it once, and never loops", async (t) => {
  // The template-bomb file, published beside the page.
  hostileModel("template-bomb.gguf", BOMB);
  const bomb = `${server.base}test-reports/template-bomb.gguf`;
  const from = server.requests.length;
  const asked = () => server.requests.slice(from).filter((r) => r === "/test-reports/template-bomb.gguf").length;
  const linked = await openPage(t, chromium.context, `${server.base}?model=${encodeURIComponent(bomb)}&chat=${encodeURIComponent(QUESTION)}`,
    { model: false, prepare: recordWorkerMessages });
  await linked.locator("#link-model-load").waitFor({ timeout: 30_000 });
  assert.equal(asked(), 0, "nothing downloaded before the visitor agrees");
  await linked.click("#link-model-load");
  await linked.waitForFunction(() => /stopped while loading this model.*not loaded again/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: TIMEOUT });
  // A loop would start when the restarted worker says it is ready: the page would load the file
  // again then (showing progress), in the same step in which it asks the worker for the stored
  // models. That worker's answer to this question is the definite point after which a loop shows.
  await linked.waitForFunction(() => {
    const workers = window.__workerMessages ?? [];
    return workers.length >= 2 && workers[workers.length - 1].some((m) => m.startsWith('{"CacheList"'));
  }, null, { timeout: 60_000 });
  assert.equal(asked(), 1, "the crashing file was fetched once");
  assert.equal(await linked.locator("#progress").count(), 0, "nothing is loading");
  assert.match(await linked.textContent("#model-info"), /no model loaded/);
});

test("a file whose chat template never finishes is stopped by Cancel; the previous model comes back", async (t) => {
  const hostile = hostileModel("template-endless.gguf", ENDLESS);
  const p = await freshPage(t);
  await p.setInputFiles("#model-file", hostile);
  // Cancel once the worker is inside the load's long step: it says "loading the model" as it
  // enters it, and reads no message until the step ends (never, with this template).
  await p.waitForFunction(() => /loading the model/.test(document.querySelector("#progress")?.textContent ?? ""), null, { timeout: 60_000 });
  await p.click("#cancel-load");
  await p.waitForFunction(() => /did not stop loading when asked.*previous model is back/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: TIMEOUT });
  await waitForModel(p);
  assert.match(await p.textContent("#model-info"), /SmolLM2/);
  await p.fill("#user", QUESTION);
  await runLens(p);
  const last = native.ids.length - 1;
  const tip = await hoverCell(p, output, last);
  assert.equal(tip.top1Id, native.top_ids[output][last][0]);
});

test("a second page load uses the stored model without fetching it again", async (t) => {
  const gguf = (r) => r.endsWith(".gguf");
  // A profile of its own, so the store holds exactly the model its first page fetched.
  const { context, fetched } = await ownBrowserWithStoredModel(t);
  assert.ok(fetched.some(gguf), "the first load fetched the model");
  const before = server.requests.length;
  const second = await openPage(t, context, server.base);
  const later = server.requests.slice(before);
  assert.ok(!later.some(gguf), `no model request on the second load: ${later.join(" ")}`);
  assert.match(await second.textContent("#notice"), /browser storage/);
  assert.match(await second.textContent("#stored-models summary"), /\(1\)/);
});

test("the page URL reproduces the view, and a run can be cancelled", async (t) => {
  const url = (await australia()).url();
  assert.match(url, /chat=What/);
  const linked = await openPage(t, chromium.context, url);
  await linked.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  assert.equal(Number(await linked.getAttribute("#figure", "data-n-positions")), native.ids.length);

  // Cancel mid-answer: the page says so and the next run works.
  await linked.fill("#answer", "200");
  await linked.click("#run");
  await linked.click("#cancel-run");
  await linked.waitForFunction(() => /cancelled|stopped/.test(document.querySelector("#notice")?.textContent ?? ""), null, { timeout: 20_000 });
  await linked.fill("#answer", "0");
  await runLens(linked);
});

test("a link that carries a conversation runs the whole of it, every cell the native tool's", async (t) => {
  const messages = [
    { role: "user", content: "Hi! Can you help me revise capital cities?" },
    { role: "assistant", content: "Of course. Ask me about any country and I will name its capital." },
    { role: "user", content: QUESTION },
  ];
  const file = artifact("conversation-link.json");
  fs.writeFileSync(file, JSON.stringify({ messages }));
  const expected = runNative(["--messages", file]);
  const p = await openPage(t, chromium.context, `${server.base}?lens_workers=1&messages=${encodeURIComponent(JSON.stringify(messages))}`);
  await p.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  // The page edits the last question; the turns before it still run, and it says so.
  assert.match(await p.textContent("#earlier-turns"), /2 earlier turns/);
  assert.equal(await p.inputValue("#user"), QUESTION);
  const got = await exportJson(p);
  assert.deepEqual(got.prompt, { messages });
  assert.equal(got.text, expected.text);
  assertSameLens(got, expected, { label: "conversation link" });
  // Every turn's template tokens are marked, not only the last one's.
  const marked = got.token_info.filter((tok) => tok.template && tok.piece === "<|im_start|>").length;
  assert.ok(marked >= 4, `${marked} turns opened by the template`);
  // The page writes the conversation into its own address, compressed, and that link runs it again.
  const written = new URL(p.url());
  assert.ok(written.searchParams.get("conv") && !written.searchParams.has("messages"), p.url());
  assert.ok(p.url().length < JSON.stringify(messages).length * 3, `${p.url().length} characters`);
  const again = await openPage(t, chromium.context, p.url());
  await again.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  assert.deepEqual((await exportJson(again)).prompt, { messages });
});

test("a run cancelled during the lens leaves nothing behind: the next run equals the native tool", async (t) => {
  const p = await freshPage(t);
  await p.click("#mode-chat");
  await p.fill("#user", QUESTION);
  await p.fill("#answer", "0");
  await p.click("#run");
  // Cancel while the helper is computing the second row group; its late reply must not be merged.
  await p.waitForFunction(() => Number(document.querySelector("#figure")?.dataset.rowsDone) > 0, null, { timeout: TIMEOUT });
  await p.click("#cancel-run");
  await p.waitForFunction(() => /cancelled|stopped/.test(document.querySelector("#notice")?.textContent ?? ""), null, { timeout: 20_000 });
  await runLens(p);
  assertSameLens(await exportJson(p), native, { top1Gap: null });
});

test("tracked tokens, other colourings, and the model's answer extending the figure", async (t) => {
  const tracked = runNative(["--chat", QUESTION, "--track", " Canberra", " Sydney"]);
  const p = await freshPage(t);
  await p.fill("#user", QUESTION);
  await p.fill("#track", " Canberra, Sydney");
  await p.fill("#answer", "12");
  await runLens(p);
  const n = Number(await p.getAttribute("#figure", "data-n-positions"));
  assert.ok(n > native.ids.length, `the answer extends the figure: ${n} positions`);
  assert.match(await p.textContent("#tokens"), /Canberra/);

  const last = native.ids.length - 1; // the last prompt position: where the answer is decided
  await p.selectOption("#metric", "rank:0");
  let tip = await hoverCell(p, output, last);
  assert.match(tip.text, /Rank of _Canberra/);
  assert.equal(Number(await p.getAttribute("#tooltip", "data-value")), tracked.tracked[0].rank[output][last]);
  await p.locator("#figure").screenshot({ path: artifact("rank-canberra.png") });

  await p.selectOption("#metric", "prob:1");
  tip = await hoverCell(p, 20, last);
  const prob = Number(await p.getAttribute("#tooltip", "data-value"));
  assert.ok(Math.abs(prob - tracked.tracked[1].prob[20][last]) < 1e-3, `P(Sydney) ${prob}`);

  await p.selectOption("#metric", "kl");
  await hoverCell(p, output, last);
  assert.equal(Number(await p.getAttribute("#tooltip", "data-value")), 0);
  await p.selectOption("#metric", "top1");
  await hoverCell(p, output, last);
  assert.ok(Math.abs(Number(await p.getAttribute("#tooltip", "data-value")) - tracked.top_probs[output][last][0]) < 1e-3);
  await p.locator("#figure").screenshot({ path: artifact("top1-probability.png") });
});

test("the lens inside blocks: 2L+1 rows named 1a, 1m, …, equal to the native tool", async (t) => {
  const inside = runNative(["--chat", QUESTION, "--inside-blocks"]);
  assert.equal(inside.n_rows, 2 * (native.n_rows - 1) + 1);
  const p = await freshPage(t);
  await p.fill("#user", QUESTION);
  await p.check("#inside-blocks");
  await runLens(p);
  assert.equal(Number(await p.getAttribute("#figure", "data-n-rows")), inside.n_rows);
  const exported = await exportJson(p);
  assert.equal(exported.inside_blocks, true);
  assertSameLens(exported, inside, { top1Gap: null });
  await p.focus("#magnified");
  await p.keyboard.press("Enter");
  const zoom = p.locator("#column-zoom");
  await zoom.waitFor();
  assert.equal(await zoom.locator('tr[data-layer="23"] th').textContent(), "12a");
  assert.equal(await zoom.locator('tr[data-layer="24"] th').textContent(), "12m");
  await p.locator("#figure").screenshot({ path: artifact("inside-blocks.png") });
  await p.keyboard.press("Escape");
});

test("a long prompt shows the positions in view first, then fills in by chunks to the native numbers", async (t) => {
  const raw = Array.from({ length: 100 }, (_, i) => `Line ${i}: the ${["red", "blue", "green"][i % 3]} fox jumps over ${i * 7} lazy dogs.`).join("\n");
  const long = runNative(["--raw", raw]);
  const n = long.ids.length;
  assert.ok(n > 1000, `${n} tokens`);
  const p = await freshPage(t);
  await p.click("#mode-raw");
  await p.fill("#raw", raw);
  await p.fill("#answer", "0");
  await p.click("#run");
  await p.waitForFunction(() => Number(document.querySelector("#figure")?.dataset.cellsDone) > 0, null, { timeout: TIMEOUT, polling: 20 });
  // The first part is every row at the last 64 positions: the magnified range, which shows the tail.
  assert.equal(Number(await p.getAttribute("#figure", "data-cells-done")), native.n_rows * 64);
  const [start, end] = (await p.getAttribute("#figure", "data-range")).split(",").map(Number);
  assert.ok(end === n && start >= n - 64, `range ${start}..${end} is inside the first part`);
  // The user brings the start into view (a click at the overview's left edge): those positions come
  // next, once the part under way is done, long before the parts between them and the tail.
  const overview = await p.locator("#overview").boundingBox();
  await p.mouse.click(overview.x + 2, overview.y + overview.height / 2);
  const doneThen = await (await p.waitForFunction(() => {
    const f = document.querySelector("#figure");
    return f.dataset.rangeDone === "true" && f.dataset.range.startsWith("0,") && Number(f.dataset.cellsDone);
  }, null, { timeout: TIMEOUT, polling: 20 })).jsonValue();
  const width = Number((await p.getAttribute("#figure", "data-range")).split(",")[1]);
  assert.ok(doneThen <= native.n_rows * (64 + 512 + width) && doneThen < native.n_rows * n,
    `the positions in view (0..${width}) arrived with ${doneThen} of ${native.n_rows * n} cells done`);
  await p.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  assertSameLens(await exportJson(p), long, { top1Gap: null });
});

test("a model too large even to stream is refused before any download; an 8B one is offered", async (t) => {
  // Llama 3.1 8B (4.92 GB) is larger than the tab holds, but loads streamed: offered as any other.
  const option = await page.textContent('#preset option[value="llama3.1-8b-q4km"]');
  assert.doesNotMatch(option, /too large/, option);
  assert.match(option, /streamed: lens only/, option);
  server.claimed["/huge.gguf"] = 60_000_000_000;
  const linked = await openPage(t, chromium.context, `${server.base}?model=${encodeURIComponent(`${server.base}huge.gguf`)}`, { model: false });
  await linked.waitForFunction(() => /Loupe reads files up to/.test(document.querySelector("#link-model")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.match(await linked.textContent("#link-model"), /60\.00 GB/);
  assert.ok(await linked.isDisabled("#link-model-load"));
  assert.ok(!server.requests.includes("/huge.gguf"), "only asked for its size");
});

test("a failed download says so and loses nothing", async (t) => {
  const p = await freshPage(t);
  await p.fill("#model-url", `${server.base}models/missing.gguf`);
  await p.click("#load-url");
  await p.waitForFunction(() => /HTTP 404/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  await waitForModel(p);
  await runLens(p);
});

test("a download that is not a model says so and is not kept", async (t) => {
  const p = await freshPage(t);
  await p.fill("#model-url", `${server.base}manifest.webmanifest`);
  await p.click("#load-url");
  await p.waitForFunction(() => /not a GGUF file/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  await waitForModel(p);
  const kept = await p.evaluate(async () => {
    const urls = [];
    for (const name of await caches.keys()) {
      if (name.startsWith("loupe-shell-")) continue;
      for (const r of await (await caches.open(name)).keys()) urls.push(r.url);
    }
    return urls;
  });
  assert.ok(!kept.some((u) => u.endsWith("manifest.webmanifest")), `not stored: ${kept.join(" ")}`);
});

test("a stored model that no longer loads is removed, with a message", async (t) => {
  const p = await freshPage(t);
  const url = `${server.base}test-models/damaged.gguf`;
  await p.evaluate(async (u) => {
    const store = await caches.open("loupe-models-v1");
    await store.put(u, new Response("GGUF, but only the magic", { headers: { "x-loupe-bytes": "24" } }));
  }, url);
  await p.fill("#model-url", url);
  await p.click("#load-url");
  await p.waitForFunction(() => /was removed/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.equal(await p.evaluate(async (u) => Boolean(await (await caches.open("loupe-models-v1")).match(u)), url), false);
  await waitForModel(p);
});

test("stored models can be listed and deleted", async (t) => {
  // A profile of its own, so the store holds exactly the bundled model, and deleting it leaves the
  // other tests' store alone.
  const { first: p } = await ownBrowserWithStoredModel(t);
  await p.click("#stored-models summary");
  assert.match(await p.textContent("#stored-models summary"), /\(1\)/);
  assert.match(await p.textContent("#stored-models li"), /SmolLM2-135M-Instruct\.Q4_1\.gguf · 98 MB/);
  await p.click("#clear-storage");
  await p.waitForFunction(() => /\(0\)/.test(document.querySelector("#stored-models summary")?.textContent ?? ""));
});

test("a download whose connection drops resumes where it stopped, or restarts where the server ignores ranges", async (t) => {
  const file = "SmolLM2-135M-Instruct.Q4_1.gguf";
  const expected = crypto.createHash("sha256").update(fs.readFileSync(MODEL)).digest("hex");
  const p = await freshPage(t);
  for (const ranges of [true, false]) {
    const url = `${server.base}test-models/${file}?ranges=${ranges}`;
    const cutAfter = 20_000_000;
    server.flaky[`/test-models/${file}`] = { cuts: 2, after: cutAfter, ranges };
    const before = server.ranged.length;
    await p.fill("#model-url", url);
    await p.click("#load-url");
    await p.waitForFunction(() => /reconnecting/.test(document.querySelector("#progress")?.textContent ?? ""), null, { timeout: 60_000 });
    // Stored only once the whole file arrived and parsed; the page's list of stored models then
    // names it. An error on the way ends the wait too.
    await p.waitForFunction((u) => document.querySelector("#error")
      || [...document.querySelectorAll("#stored-models .url")].some((e) => e.textContent === u), url, { timeout: TIMEOUT });
    assert.equal(await p.evaluate(() => document.querySelector("#error")?.textContent ?? ""), "", "no error");
    const storedNow = await p.evaluate(async (u) => Boolean(await (await caches.open("loupe-models-v1")).match(u)), url);
    assert.ok(storedNow, "the download is stored");
    await waitForModel(p);
    const asked = server.ranged.slice(before);
    // Two drops, two requests for the rest. With ranges, the third answer starts where the second
    // stopped; without, the second answer restarted at byte 0 and dropped before it got further.
    assert.equal(asked.length, 2, `two requests for the rest: ${asked.join(", ")}`);
    const starts = asked.map((a) => Number(/bytes=(\d+)-/.exec(a)[1]));
    assert.ok(starts[0] > 0 && (ranges ? starts[1] > starts[0] : starts[1] === starts[0]), `each asks from where the body stopped: ${starts} (ranges ${ranges})`);
    const stored = await p.evaluate(async (u) => {
      const bytes = await (await (await caches.open("loupe-models-v1")).match(u)).arrayBuffer();
      return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
    }, url);
    assert.equal(stored, expected, `the stored file is the served file (ranges ${ranges})`);
    await p.evaluate(async (u) => (await caches.open("loupe-models-v1")).delete(u), url);
  }
  // A file that changed on the server between the drop and the reconnection is refused, not spliced.
  const url = `${server.base}test-models/${file}?replaced`;
  server.flaky[`/test-models/${file}`] = { cuts: 1, after: 20_000_000, replaced: true };
  await p.fill("#model-url", url);
  await p.click("#load-url");
  await p.waitForFunction(() => /changed on the server/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 60_000 });
  assert.equal(await p.evaluate(async (u) => Boolean(await (await caches.open("loupe-models-v1")).match(u)), url), false);
  delete server.flaky[`/test-models/${file}`];
  await waitForModel(p);
  await runLens(p);
});

test("a link to a model that is not a preset asks first, showing host and size, then loads and runs it", async (t) => {
  const file = "qwen2.5-coder-0.5b-instruct.gguf";
  const model = `${server.base}test-models/${file}`;
  const before = server.requests.length;
  const linked = await openPage(t, chromium.context, `${server.base}?model=${encodeURIComponent(model)}&chat=${encodeURIComponent(QUESTION)}`, { model: false });
  const ask = linked.locator("#link-model");
  await ask.waitFor({ timeout: 30_000 });
  await linked.waitForFunction(() => document.querySelector("#link-model")?.dataset.bytes, null, { timeout: 30_000 });
  assert.equal(await ask.getAttribute("data-host"), new URL(server.base).host);
  assert.equal(Number(await ask.getAttribute("data-bytes")), fs.statSync(path.join(ROOT, "models", file)).size);
  // The page decided to ask instead of loading when its worker came up (the question is on screen),
  // and nothing loads until the user answers: no later event to wait for.
  assert.match(await linked.textContent("#model-info"), /no model loaded/);
  assert.ok(!server.requests.slice(before).includes(`/test-models/${file}`), "nothing downloaded before the user agrees");
  await ask.screenshot({ path: artifact("link-model-question.png") });
  await linked.click("#link-model-load");
  await linked.waitForFunction(() => /qwen2/.test(document.querySelector("#model-info")?.textContent ?? ""), null, { timeout: TIMEOUT });
  // The link's question runs once the model is in.
  await linked.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
});

test("Qwen2.5 and Gemma 3 in the browser give the native tool's numbers", async (t) => {
  const p = await freshPage(t);
  for (const [file, args] of [
    ["gemma-3-270m-q4_k_m.gguf", ["--raw", "The Eiffel Tower is in the city of"]],
    ["gemma-3-270m-q4_k_m.gguf", ["--chat", QUESTION]],
    ["qwen2.5-coder-0.5b-instruct.gguf", ["--chat", QUESTION]],
  ]) {
    const expected = runNative(args, path.join(ROOT, "models", file));
    if (!(await p.textContent("#model-info")).includes(expected.architecture === "gemma3" ? "gemma3" : "qwen2")) {
      await p.fill("#model-url", `${server.base}test-models/${file}`);
      await p.click("#load-url");
      await p.waitForFunction((arch) => (document.querySelector("#model-info")?.textContent ?? "").includes(arch) && !document.querySelector("#progress"),
        expected.architecture, { timeout: TIMEOUT });
    }
    if (args[0] === "--raw") {
      await p.click("#mode-raw");
      await p.fill("#raw", args[1]);
    } else {
      await p.click("#mode-chat");
      await p.fill("#user", args[1]);
    }
    await runLens(p);
    const got = await exportJson(p);
    assert.equal(got.text, expected.text, `${file}: text`);
    assert.deepEqual(got.ids, expected.ids, `${file}: ids`);
    assertSameLens(got, expected, { label: file });
    await p.locator("#figure").screenshot({ path: artifact(`${file}-${args[0].slice(2)}.png`) });
  }
});

test("a report from the command line opens in the page with the native numbers; a foreign file is refused", async (t) => {
  const p = await freshPage(t);
  const report = await openReport(p);
  assert.equal(await p.getAttribute("#figure", "data-complete"), "true");
  assert.equal(Number(await p.getAttribute("#figure", "data-n-positions")), report.ids.length);
  const last = report.ids.length - 1;
  const top = report.n_rows - 1;
  await assertSameTooltips(p, report, [[top, last], [12, last - 4], [0, last - 9]], { entropy: 1e-4 });
  await p.selectOption("#metric", "rank:0");
  await hoverCell(p, top, last);
  assert.equal(Number(await p.getAttribute("#tooltip", "data-value")), report.tracked[0].rank[top][last]);
  await p.locator("#figure").screenshot({ path: artifact("opened-report.png") });
  await p.selectOption("#metric", "entropy");

  await p.setInputFiles("#open-report", { name: "foreign.json", mimeType: "application/json", buffer: Buffer.from('{"hello": 1}') });
  await p.waitForFunction(() => /cannot open foreign\.json/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.equal(Number(await p.getAttribute("#figure", "data-n-positions")), report.ids.length, "the opened figure stays");

  // A static site publishes figures by link: `?report=` shows one without loading any model.
  const before = server.requests.length;
  const published = await openPage(t, chromium.context, `${server.base}?report=test-reports/cli-report.json`, { model: false });
  await published.waitForFunction(() => /opened test-reports\/cli-report\.json/.test(document.querySelector("#notice")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.equal(Number(await published.getAttribute("#figure", "data-n-positions")), report.ids.length);
  assert.equal(await published.getAttribute("#figure", "data-complete"), "true");
  assert.match(await published.textContent("#model-info"), /no model loaded/);
  assert.ok(!server.requests.slice(before).some((r) => r.endsWith(".gguf")), "no model fetched");
  await published.goto(`${server.base}?report=test-reports/missing.json`);
  await published.waitForFunction(() => /cannot open .*HTTP 404/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  // A report on another host is not fetched from a link (the same server under another origin).
  const elsewhere = new URL("test-reports/cli-report.json", server.base.replace("127.0.0.1", "localhost")).href;
  const asked = server.requests.length;
  await published.goto(`${server.base}?report=${encodeURIComponent(elsewhere)}`);
  await published.waitForFunction(() => /only reports published beside this page/.test(document.querySelector("#error")?.textContent ?? ""), null, { timeout: 30_000 });
  assert.ok(!server.requests.slice(asked).some((r) => r.includes("cli-report")), "the other host was not asked");
});

test("the keyboard walks the figure and announces each cell; Enter opens the column, Escape closes it", async (t) => {
  // The Australia report from the command line, opened on a page of its own.
  const p = await freshPage(t);
  await openReport(p);
  const n = Number(await p.getAttribute("#figure", "data-n-positions"));
  assert.equal(n, native.ids.length);
  await p.focus("#magnified");
  await p.keyboard.press("ArrowDown"); // from the output row at the last position
  await p.keyboard.press("ArrowLeft");
  const said = await p.textContent("#focus-announce");
  const row = output - 1;
  assert.match(said, new RegExp(`^layer ${row}, position ${n - 2} `));
  const entropy = Number(/entropy ([0-9.]+) nats/.exec(said)[1]);
  assert.ok(Math.abs(entropy - native.entropy[row][n - 2]) < 0.006, `${said} vs ${native.entropy[row][n - 2]}`);
  await p.keyboard.press("Enter");
  assert.equal(Number(await p.getAttribute("#column-zoom", "data-pos")), n - 2);
  await p.keyboard.press("Escape");
  await p.locator("#column-zoom").waitFor({ state: "detached" });
  await p.selectOption("#palette", "viridis");
  await p.locator("#figure").screenshot({ path: artifact("viridis.png") });
});
