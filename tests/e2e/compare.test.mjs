// The compare view in real Chromium with the real SmolLM2: the Australia question with its chat
// template, then in one click the same text without it; the difference figure's cells equal the
// difference of the two native runs at the cells the alignment pairs, and the runs' different
// lengths are handled both ways round.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { serve, browser, artifact, ROOT, waitForModel, openPage } from "./harness.mjs";
import { exportJson } from "./lens-check.mjs";

const MODEL = path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
const LOUPE = path.join(ROOT, "target/release/loupe");
const QUESTION = "What is the capital of Australia?";
const TIMEOUT = 300_000;

let server, chromium;

function runNative(args, model = MODEL) {
  const out = artifact(`native-compare-${Date.now()}.json`);
  execFileSync(LOUPE, ["--model", model, ...args, "--json", out], { stdio: "pipe" });
  return JSON.parse(fs.readFileSync(out, "utf8"));
}

/// A page of test `t`'s own with the bundled model loaded (from the browser's storage once the
/// first page has stored it), so no test depends on what another left on screen.
function freshPage(t) {
  return openPage(t, chromium.context, server.base);
}

/// Runs the Australia question with its chat template, no answer.
async function runChat(p) {
  await p.click("#mode-chat");
  await p.fill("#user", QUESTION);
  await p.fill("#answer", "0");
  await p.click("#run");
  await p.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
}

/// The one click: pins the chat run and runs the same text raw, compared with it.
async function compareWithoutTemplate(p) {
  await p.click("#compare-raw");
  await p.waitForFunction(() => /Compared with the pinned run/.test(document.querySelector("#compare-info")?.textContent ?? ""), null, { timeout: TIMEOUT });
  await p.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
}

/// Every cell the alignment pairs: the exported change equals current − pinned from the native runs.
function checkDifference(json, current, pinned) {
  const c = json.compared_with;
  assert.ok(c, "the export carries the pinned run");
  assert.deepEqual(c.report.ids, pinned.ids, "the pinned run's tokens");
  assert.deepEqual(json.ids, current.ids, "the current run's tokens");
  let compared = 0;
  for (let r = 0; r < current.n_rows; r++) {
    for (let p = 0; p < current.ids.length; p++) {
      const q = c.positions[p];
      if (q === null) {
        assert.equal(c.entropy_change[r][p], null, `no counterpart at ${p}`);
        continue;
      }
      assert.equal(current.tokens[p], pinned.tokens[q], `aligned tokens at ${p}`);
      const expected = current.entropy[r][p] - pinned.entropy[c.rows[r]][q];
      assert.ok(Math.abs(c.entropy_change[r][p] - expected) < 0.02, `ΔH (${r}, ${p}): ${c.entropy_change[r][p]} vs ${expected}`);
      compared++;
    }
  }
  return compared;
}

before(async () => {
  server = await serve(undefined, { "/arch/": path.join(ROOT, "app/lens/tests/fixtures/architectures") });
  chromium = await browser();
  // The first page fetches the bundled model and stores it; each test opens a page of its own.
  const first = await chromium.context.newPage();
  first.on("pageerror", (e) => console.log("page error:", e.message));
  await first.goto(server.base);
  await waitForModel(first);
});

after(async () => {
  await chromium?.close();
  await server?.close();
});

test("one click compares the chat run with the same text without the template", async (t) => {
  const chat = runNative(["--chat", QUESTION]);
  const raw = runNative(["--raw", QUESTION]);
  const page = await freshPage(t);
  await runChat(page);
  assert.ok(await page.isDisabled("#unpin").catch(() => true), "nothing pinned yet");

  await compareWithoutTemplate(page);
  const info = await page.textContent("#compare-info");
  // Every raw token has a counterpart inside the chat prompt, where the question sits.
  assert.match(info, new RegExp(`${raw.ids.length} of ${raw.ids.length} positions matched by matching tokens`), info);
  assert.equal(await page.inputValue("#metric"), "dentropy", "colours show the entropy change");
  await page.screenshot({ path: artifact("compare-without-template.png"), fullPage: true });

  const json = await exportJson(page);
  const compared = checkDifference(json, raw, chat);
  assert.equal(compared, raw.n_rows * raw.ids.length);
  const q = json.compared_with.positions[raw.tokens.indexOf("ĠAustralia")];
  assert.equal(chat.tokens[q], "ĠAustralia");

  // The page's link carries both runs: opened afresh, it runs the pinned chat question, pins it,
  // runs the raw text and shows the same comparison.
  const link = page.url();
  assert.match(link, /pin_chat=/);
  assert.match(link, /[?&]raw=/);
  const again = await openPage(t, chromium.context, link);
  await again.waitForFunction(() => /Compared with the pinned run/.test(document.querySelector("#compare-info")?.textContent ?? "") && document.querySelector('#figure[data-complete="true"]'), null, { timeout: TIMEOUT });
  assert.match(await again.textContent("#compare-info"), /pinned run \(chat “What is the capital of Australia\?”/);
  checkDifference(await exportJson(again), raw, chat);
});

test("the other way round, the template's positions have no counterpart and say so", async (t) => {
  const chat = runNative(["--chat", QUESTION]);
  const raw = runNative(["--raw", QUESTION]);
  // The comparison of the test above (the chat run pinned, the raw run compared with it, colours
  // showing the change), set up on a page of this test's own.
  const page = await freshPage(t);
  await runChat(page);
  await compareWithoutTemplate(page);
  // The raw run is the current one: pin it, then ask the chat question.
  await page.click("#pin-run");
  await page.click("#mode-chat");
  await page.fill("#user", QUESTION);
  await page.click("#run");
  await page.waitForFunction((n) => new RegExp(`\\d+ of ${n} positions matched`).test(document.querySelector("#compare-info")?.textContent ?? ""), chat.ids.length, { timeout: TIMEOUT });
  await page.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  const json = await exportJson(page);
  const compared = checkDifference(json, chat, raw);
  assert.ok(compared < chat.n_rows * chat.ids.length, "template positions are left out");
  const unmatched = json.compared_with.positions.filter((p) => p === null).length;
  assert.ok(unmatched >= chat.ids.length - raw.ids.length, `${unmatched} positions without a counterpart`);
  await page.screenshot({ path: artifact("compare-chat-against-raw.png"), fullPage: true });

  // Swapping shows the pinned raw run, compared with the chat run: the same cells, sign turned.
  await page.click("#swap-pinned");
  assert.equal(Number(await page.getAttribute("#figure", "data-n-positions")), raw.ids.length);
  const swapped = await exportJson(page);
  assert.equal(checkDifference(swapped, raw, chat), raw.n_rows * raw.ids.length);
  await page.click("#swap-pinned");
  assert.equal(Number(await page.getAttribute("#figure", "data-n-positions")), chat.ids.length);

  await page.click("#unpin");
  assert.equal(await page.locator("#compare-info").count(), 0);
  assert.equal(await page.inputValue("#metric"), "entropy");
});

test("the same text on two models with one tokenizer lines rows up by relative depth", async (t) => {
  // Two of the architecture fixtures share a byte-level vocabulary: Qwen3 with 3 layers, Gemma 3
  // with 6. Pin the text on one, load the other, run the same text.
  const TEXT = "the thin hen in the tent";
  const fixture = (name) => path.join(ROOT, "app/lens/tests/fixtures/architectures", name);
  const qwen = runNative(["--raw", TEXT], fixture("qwen3.gguf"));
  const gemma = runNative(["--raw", TEXT], fixture("gemma3.gguf"));
  const page = await freshPage(t);
  const load = async (name, pattern) => {
    await page.fill("#model-url", `${server.base}arch/${name}`);
    await page.click("#load-url");
    await page.waitForFunction((p) => new RegExp(p).test(document.querySelector("#model-info")?.textContent ?? ""), pattern, { timeout: TIMEOUT });
  };
  await load("qwen3.gguf", "loupe-test-qwen3");
  await page.click("#mode-raw");
  await page.fill("#raw", TEXT);
  await page.fill("#answer", "0");
  await page.click("#run");
  await page.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  await page.click("#pin-run");
  await load("gemma3.gguf", "loupe-test-gemma3");
  await page.click("#run");
  await page.waitForFunction(() => /rows by relative depth \(7 rows against 4\)/.test(document.querySelector("#compare-info")?.textContent ?? ""), null, { timeout: TIMEOUT });
  await page.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  const json = await exportJson(page);
  assert.deepEqual(json.compared_with.rows, [0, 1, 1, 2, 2, 3, 3]);
  assert.equal(checkDifference(json, gemma, qwen), gemma.n_rows * gemma.ids.length);
  await page.click("#unpin");
});
