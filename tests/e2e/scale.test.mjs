// Streamed mode in real Chromium: a random-weight model with Llama 3's structure (GQA, rope_freqs,
// untied output), written at test time, larger than the tab's resident limit (lowered by the link's
// `resident_limit`, as a model larger than memory would be), loads streamed, says so, refuses to
// answer, and draws the figure the native tool computes with every weight in memory.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { serve, browser, artifact, ROOT, waitForModel } from "./harness.mjs";
import { exportJson, assertSameLens } from "./lens-check.mjs";

const LOUPE = path.join(ROOT, "target/release/loupe");
const MAKE_MODEL = path.join(ROOT, "target/release/examples/make_scale_model");
const QUESTION = "What is the capital of Australia?";
const TIMEOUT = 300_000;

let server, chromium, page, model, dir;

before(async () => {
  dir = fs.mkdtempSync(path.join(ROOT, "target/scale-test-"));
  model = path.join(dir, "llama3-tiny.gguf");
  execFileSync(MAKE_MODEL, [model, "llama3-tiny"], { stdio: "pipe" });
  server = await serve(undefined, { "/scale-models/": dir });
  chromium = await browser();
  page = await chromium.context.newPage();
  page.on("pageerror", (e) => console.log("page error:", e.message));
});

after(async () => {
  await chromium?.close();
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("a model above the resident limit loads streamed, refuses answers, and draws the resident lens", async () => {
  const bytes = fs.statSync(model).size;
  const url = `${server.base}scale-models/llama3-tiny.gguf`;
  // Half the file's size: this model is "larger than the tab holds".
  await page.goto(`${server.base}?resident_limit=${Math.floor(bytes / 2)}&lens_workers=1`);
  await waitForModel(page);
  await page.fill("#model-url", url);
  await page.click("#load-url");
  await page.waitForFunction(() => /random 2-block/.test(document.querySelector("#model-info")?.textContent ?? ""), null, { timeout: TIMEOUT });
  const info = await page.textContent("#model-info");
  assert.match(info, /streamed from the file block by block/, info);
  assert.ok(await page.isDisabled("#answer"), "answers are off for a streamed model");

  await page.click("#mode-chat");
  await page.fill("#user", QUESTION);
  await page.click("#run");
  await page.waitForSelector('#figure[data-complete="true"]', { timeout: TIMEOUT });
  await page.screenshot({ path: artifact("streamed-llama3-tiny.png") });

  const out = artifact(`native-streamed-${Date.now()}.json`);
  execFileSync(LOUPE, ["--model", model, "--chat", QUESTION, "--json", out], { stdio: "pipe" });
  const native = JSON.parse(fs.readFileSync(out, "utf8"));
  const exported = await exportJson(page);
  assert.deepEqual(exported.ids, native.ids);
  assert.equal(exported.n_rows, native.n_rows);
  assertSameLens(exported, native);

  // The same file under the default limit loads into memory, and answers again.
  await page.goto(`${server.base}?lens_workers=1`);
  await waitForModel(page);
  await page.fill("#model-url", url);
  await page.click("#load-url");
  await page.waitForFunction(() => /random 2-block/.test(document.querySelector("#model-info")?.textContent ?? ""), null, { timeout: TIMEOUT });
  assert.match(await page.textContent("#model-info"), /in memory/);
  assert.ok(!(await page.isDisabled("#answer")));
});
