// Probe (not a test): each worker's wasm memory and JS heap after loading a model and after its
// Australia figure, to see where the memory benchmark's bytes live.
//   node bench/wasm-memory-probe.mjs   (MODEL=file in models/, LENS_WORKERS=n)
import path from "node:path";
import fs from "node:fs";

/// PSS of every Chromium renderer process on the machine, MiB (run nothing else meanwhile).
function rendererMiB() {
  let kb = 0;
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer")) continue;
      kb += Number(/Pss:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))[1]);
    } catch { /* gone */ }
  }
  return (kb / 1024).toFixed(0);
}
import { chromium } from "playwright-core";
import { serve, ROOT } from "../e2e/harness.mjs";

const file = process.env.MODEL ?? "qwen2.5-coder-0.5b-instruct.gguf";
const server = await serve(undefined, { "/bench-models/": path.join(ROOT, "models") });
const browser = process.env.PERSISTENT ? await (await import("../e2e/harness.mjs")).browser().then((b) => ({ newPage: () => b.context.newPage(), newBrowserCDPSession: () => b.context.browser()?.newBrowserCDPSession(), close: b.close })) : await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--enable-precise-memory-info", "--js-flags=--expose-gc"] });
const page = await browser.newPage();
const workers = [];
page.on("worker", (w) => workers.push(w));
const params = process.env.LENS_WORKERS === undefined ? "" : `&lens_workers=${process.env.LENS_WORKERS}`;
await page.goto(`${server.base}?model=${encodeURIComponent(`${server.base}bench-models/none.gguf`)}${params}`);
await page.waitForSelector("#link-model", { timeout: 60000 });

/// Chromium's own memory-infra dump: the top-level allocators of each renderer, MiB.
async function allocators() {
  const cdp = await browser.newBrowserCDPSession();
  const events = [];
  cdp.on("Tracing.dataCollected", (e) => events.push(...e.value));
  const done = new Promise((r) => cdp.once("Tracing.tracingComplete", r));
  await cdp.send("Tracing.start", { traceConfig: { includedCategories: ["disabled-by-default-memory-infra"], memoryDumpConfig: { triggers: [] } } });
  await cdp.send("Tracing.requestMemoryDump", { deterministic: true, levelOfDetail: "detailed" });
  await cdp.send("Tracing.end");
  await done;
  const lines = [];
  for (const e of events.filter((e) => e.ph === "v" && e.args?.dumps?.allocators)) {
    const a = e.args.dumps.allocators;
    const size = (k) => a[k]?.attrs?.size ? parseInt(a[k].attrs.size.value, 16) / 1048576 : 0;
    const tops = Object.keys(a).filter((k) => !k.includes("/") || /^partition_alloc\/partitions\/[a-z_]+$/.test(k) || /^v8\/[a-z_]+$/.test(k)).map((k) => [k, size(k)]).filter(([, v]) => v > 5);
    if (tops.length) lines.push(`pid ${e.pid}: ${tops.map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")}`);
  }
  return lines.join("\n  ");
}

async function report(stage) {
  if (process.env.DUMP) console.log(`${stage} allocators:\n  ${await allocators()}`);
  const rows = [];
  for (const w of workers) {
    try {
      rows.push(await w.evaluate(async () => {
        const mem = (await wasm_bindgen()).memory.buffer.byteLength / 1048576;
        const heap = performance.memory ? performance.memory.usedJSHeapSize / 1048576 : NaN;
        return `${self.name || "worker"} wasm ${mem.toFixed(0)} MiB, JS heap ${heap.toFixed(0)} MiB`;
      }));
    } catch (e) { rows.push(`${w.url()}: ${e.message.split("\n")[0]}`); }
  }
  const heap = await page.evaluate(() => performance.memory.usedJSHeapSize / 1048576);
  const before = rendererMiB();
  for (const w of workers) await w.evaluate(() => self.gc && self.gc()).catch(() => {});
  await page.evaluate(() => self.gc && self.gc());
  console.log(`${stage}: renderers ${before} MiB, ${rendererMiB()} MiB after gc() in every worker and the page; page JS heap ${heap.toFixed(0)} MiB; ${rows.join("; ")}`);
}
await page.waitForTimeout(1500);
await report("idle");
let peak = 0;
let peakAt = "", phase = "load", t0 = Date.now();
const sampler = setInterval(() => {
  const now = Number(rendererMiB());
  if (now > peak) { peak = now; peakAt = `${phase} +${((Date.now() - t0) / 1000).toFixed(2)} s`; }
}, 50);
if (process.env.FILE) await page.setInputFiles("#model-file", path.join(ROOT, "models", file));
else {
  await page.fill("#model-url", `${server.base}bench-models/${file}`);
  await page.click("#load-url");
}
page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") console.log("console:", m.text().slice(0, 300)); });
await page.waitForFunction(() => (/layers/.test(document.querySelector("#model-info")?.textContent ?? "") && !document.querySelector("#progress")) || document.querySelector("#error")?.textContent, null, { timeout: 600000 });
const error = await page.textContent("#error").catch(() => null);
if (error) console.log("error shown:", error);
console.log(`peak during load: renderers ${peak} MiB`);
await report("after load");
await page.click("#mode-chat");
await page.fill("#user", "What is the capital of Australia?");
phase = "run"; t0 = Date.now();
await page.click("#run");
if (process.env.DUMP) {
  for (const t of [1500, 3000, 3000]) {
    await page.waitForTimeout(t);
    console.log(`during the run: renderers ${rendererMiB()} MiB; allocators:\n  ${await allocators()}`);
  }
}
await page.waitForSelector('#figure[data-complete="true"]', { timeout: 600000 });
clearInterval(sampler);
console.log(`peak during load and run: renderers ${peak} MiB at ${peakAt}; the run took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
await report("after the run");
await browser.close();
await server.close();
