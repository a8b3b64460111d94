// Browser benchmark (not a test): for the reference prompts, the time from "Run" to the complete
// figure in headless Chromium, beside the native tool's time for the same prompt on this machine,
// and the longest main-thread stall during the run (long tasks and gaps between animation frames).
//   node bench/browser-bench.mjs        (after scripts/build-app.sh and cargo build --release -p loupe-cli)
//   PRECISION=fast LENS_WORKERS=1 node bench/browser-bench.mjs
//   SIMD=baseline node bench/browser-bench.mjs   (the SIMD128 worker where relaxed SIMD would run)
//   PYTORCH=/path/to/venv/bin/python node bench/browser-bench.mjs   (adds transformers + PyTorch fp32,
//       bench/pytorch-bench.py, on the same tokens: the browser/PyTorch ratio of the issue)
import path from "node:path";
import fs from "node:fs";
import { execFileSync } from "node:child_process";
import { serve, browser, artifact, ROOT } from "../e2e/harness.mjs";

const CASES = [
  { file: "SmolLM2-135M-Instruct.Q4_1.gguf", chat: "What is the capital of Australia?" },
  { file: "SmolLM2-135M-Instruct.Q4_1.gguf", raw: "The Eiffel Tower is in the city of" },
  { file: "qwen2.5-coder-0.5b-instruct.gguf", chat: "What is the capital of Australia?" },
  { file: "gemma-3-270m-q4_k_m.gguf", chat: "What is the capital of Australia?", template: "gemma" },
  { file: "gemma-3-270m-q4_k_m.gguf", raw: "The Eiffel Tower is in the city of" },
];
// LENGTHS=100,1000,3000 adds raw prompts of about that many tokens on SmolLM2 (the length curve).
const LENGTHS = (process.env.LENGTHS ?? "").split(",").filter(Boolean).map(Number);
const PROSE = fs.readFileSync(path.join(ROOT, "README.md"), "utf8").repeat(4);
for (const n of LENGTHS) CASES.push({ file: "SmolLM2-135M-Instruct.Q4_1.gguf", raw: PROSE.slice(0, Math.round(n * 3.4)) });
const PRECISION = process.env.PRECISION ?? "exact";
// Extra lens workers; unset = the app's own choice from the number of cores.
const LENS_WORKERS = process.env.LENS_WORKERS;

function native(c) {
  const out = artifact("bench-native.json");
  const args = ["--model", path.join(ROOT, "models", c.file), c.chat ? "--chat" : "--raw", c.chat ?? c.raw, "--precision", PRECISION, "--json", out];
  if (c.template) args.push("--template", c.template);
  const t0 = process.hrtime.bigint();
  execFileSync(path.join(ROOT, "target/release/loupe"), args, { stdio: "pipe" });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const t = JSON.parse(fs.readFileSync(out, "utf8")).timings;
  let pytorch = null;
  if (process.env.PYTORCH) {
    const printed = execFileSync(process.env.PYTORCH, [path.join(ROOT, "tests/bench/pytorch-bench.py"), path.join(ROOT, "models", c.file), out], { stdio: ["ignore", "pipe", "ignore"] });
    pytorch = JSON.parse(printed.toString().trim().split("\n").pop()).seconds;
  }
  return { wall, compute: t.forward + t.lens, pytorch };
}

const server = await serve(undefined, { "/bench-models/": path.join(ROOT, "models") });
const chromium = await browser();
const page = await chromium.context.newPage();
const params = new URLSearchParams();
if (LENS_WORKERS !== undefined) params.set("lens_workers", LENS_WORKERS);
if (process.env.SIMD) params.set("simd", process.env.SIMD);
await page.goto(`${server.base}?${params}`);
await page.waitForFunction(() => /layers/.test(document.querySelector("#model-info")?.textContent ?? ""), null, { timeout: 300000 });
await page.selectOption("#precision", PRECISION);

console.log(`precision: ${PRECISION}; ${await page.textContent("#model-info")}`);
console.log("model                               prompt length | browser run→figure s | native forward+lens s (process s) | browser/native | PyTorch s | browser/PyTorch | native/PyTorch | longest stall ms (long task, frame gap)");
let loaded = "SmolLM2-135M-Instruct.Q4_1.gguf";
for (const c of CASES) {
  if (c.file !== loaded) {
    await page.fill("#model-url", `${server.base}bench-models/${c.file}`);
    await page.click("#load-url");
    await page.waitForFunction((f) => (document.querySelector("#model-info")?.textContent ?? "").includes("layers") && !document.querySelector("#progress"), c.file, { timeout: 600000 });
    loaded = c.file;
  }
  if (c.chat) {
    await page.click("#mode-chat");
    await page.fill("#user", c.chat);
  } else {
    await page.click("#mode-raw");
    await page.fill("#raw", c.raw);
  }
  await page.waitForTimeout(300);
  await page.evaluate(() => {
    window.__stall = { longTask: 0, frameGap: 0, last: performance.now(), on: true };
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__stall.longTask = Math.max(window.__stall.longTask, e.duration);
    }).observe({ type: "longtask" });
    const frame = (t) => {
      if (!window.__stall.on) return;
      window.__stall.frameGap = Math.max(window.__stall.frameGap, t - window.__stall.last);
      window.__stall.last = t;
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
  const t0 = Date.now();
  await page.click("#run");
  await page.waitForSelector('#figure[data-complete="true"]', { timeout: 600000 });
  const seconds = (Date.now() - t0) / 1000;
  const stall = await page.evaluate(() => { window.__stall.on = false; return window.__stall; });
  const status = (await page.textContent("#run-status")).replace("done: ", "");
  const n = native(c);
  const tokens = await page.getAttribute("#figure", "data-n-positions");
  const label = `${c.file.slice(0, 34).padEnd(34)} ${c.chat ? "chat" : "raw "} ${tokens.padStart(5)} tok`;
  const torch = n.pytorch === null ? "    –" : n.pytorch.toFixed(2).padStart(6);
  const vsTorch = (x) => (n.pytorch === null ? "  –" : (x / n.pytorch).toFixed(2).padStart(5));
  console.log(`${label} | ${seconds.toFixed(2).padStart(8)} | ${n.compute.toFixed(2).padStart(8)} (${n.wall.toFixed(2)}) | ${(seconds / n.compute).toFixed(1).padStart(5)} | ${torch} | ${vsTorch(seconds)} | ${vsTorch(n.compute)} | ${Math.max(stall.longTask, stall.frameGap).toFixed(0)} (${stall.longTask.toFixed(0)}, ${stall.frameGap.toFixed(0)}) | ${status}`);
  await page.locator("#figure").screenshot({ path: artifact(`bench-${c.file}-${c.chat ? "chat" : "raw"}.png`) });
}
await chromium.close();
await server.close();
