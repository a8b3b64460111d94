// Quick A/B benchmark (not a test): the same prompt run REPEAT times on one page for each lens
// worker setting, so warm runs can be compared (the first run after a load includes V8 tier-up
// and storage work). Prints run→figure time and the page's forward and lens times.
//   WORKERS=auto,0,1 REPEAT=3 MODEL=qwen2.5-coder-0.5b-instruct.gguf node bench/repeat-bench.mjs
import path from "node:path";
import { serve, browser, ROOT } from "../e2e/harness.mjs";

const file = process.env.MODEL ?? "SmolLM2-135M-Instruct.Q4_1.gguf";
const bundled = file.startsWith("SmolLM2-135M-Instruct.Q4_1");
const server = await serve(undefined, { "/bench-models/": path.join(ROOT, "models") });
const chromium = await browser();
const modelLoaded = () => /layers/.test(document.querySelector("#model-info")?.textContent ?? "") && !document.querySelector("#progress");
for (const workers of (process.env.WORKERS ?? "auto,0").split(",")) {
  const page = await chromium.context.newPage();
  await page.goto(workers === "auto" ? server.base : `${server.base}?lens_workers=${workers}`);
  await page.waitForFunction(modelLoaded, null, { timeout: 300000 });
  if (!bundled) {
    const before = await page.textContent("#model-info");
    await page.fill("#model-url", `${server.base}bench-models/${file}`);
    await page.click("#load-url");
    await page.waitForFunction((b) => document.querySelector("#model-info")?.textContent !== b, before, { timeout: 600000 });
    await page.waitForFunction(modelLoaded, null, { timeout: 600000 });
  }
  await page.click("#mode-chat");
  await page.fill("#user", process.env.PROMPT ?? "What is the capital of Australia?");
  for (let i = 0; i < Number(process.env.REPEAT ?? 2); i++) {
    const t0 = Date.now();
    await page.click("#run");
    await page.waitForSelector('#figure[data-complete="true"]', { timeout: 600000 });
    console.log(`${file} workers ${workers} run ${i + 1}: ${((Date.now() - t0) / 1000).toFixed(2)} s | ${await page.textContent("#run-status")}`);
  }
  await page.close();
}
await chromium.close();
await server.close();
