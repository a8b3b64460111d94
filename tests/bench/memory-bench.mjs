// Memory benchmark (not a test): the peak memory a model adds to the browser, measured as the PSS
// of the whole Chromium process tree (from /proc/*/smaps_rollup, Linux) minus the same tree idle on
// the page before any model is loaded, while the model loads and then draws the Australia figure.
//   node bench/memory-bench.mjs        (after scripts/build-app.sh; models from scripts/fetch-models.sh)
import path from "node:path";
import fs from "node:fs";
import os from "node:os";
import { chromium } from "playwright-core";
import { serve, ROOT } from "../e2e/harness.mjs";

const MODELS = (process.env.MODELS ?? "SmolLM2-135M-Instruct.Q4_1.gguf,gemma-3-270m-q4_k_m.gguf,qwen2.5-coder-0.5b-instruct.gguf").split(",");
const LENS_WORKERS = process.env.LENS_WORKERS;

/// The browser's main process: the one whose command line names this run's profile directory
/// and has no parent that does.
function browserRoot(profile) {
  const named = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((pid) => {
    try { return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(profile); } catch { return false; }
  }).map(Number);
  const parent = (pid) => { const st = fs.readFileSync(`/proc/${pid}/stat`, "utf8"); return Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]); };
  return named.find((pid) => !named.includes(parent(pid)));
}

function tree(root) {
  const children = new Map();
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(pid));
    } catch { /* gone */ }
  }
  const all = [];
  const walk = (p) => { all.push(p); for (const c of children.get(p) ?? []) walk(c); };
  walk(root);
  return all;
}

/// PSS per process kind (browser, renderer, gpu, utility), MiB.
function breakdown(root) {
  const kinds = {};
  for (const pid of tree(root)) {
    try {
      const m = /Pss:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const kind = /--type=([a-z-]+)/.exec(cmd)?.[1] ?? "browser";
      const sub = /--utility-sub-type=([a-zA-Z.]+)/.exec(cmd)?.[1]?.split(".").pop() ?? "";
      if (m) kinds[kind + (sub ? `:${sub}` : "")] = (kinds[kind + (sub ? `:${sub}` : "")] ?? 0) + Number(m[1]) / 1024;
    } catch { /* gone */ }
  }
  return Object.entries(kinds).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ");
}

function pssMiB(root) {
  let kb = 0;
  for (const pid of tree(root)) {
    try {
      const m = /Pss:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
      if (m) kb += Number(m[1]);
    } catch { /* gone */ }
  }
  return kb / 1024;
}

const server = await serve(undefined, { "/bench-models/": path.join(ROOT, "models") });
console.log("model | GGUF MiB | idle MiB | peak added MiB | ratio | after the run MiB | load s | run");
for (const file of MODELS) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-memory-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  const root = browserRoot(profile);
  const page = await context.newPage();
  if (process.env.BREAKDOWN) setTimeout(function tick() { console.log("   ", breakdown(root)); setTimeout(tick, 1000); }, 0);
  // A page that loads nothing: a link to a model URL waits for the user's consent.
  const params = LENS_WORKERS === undefined ? "" : `&lens_workers=${LENS_WORKERS}`;
  await page.goto(`${server.base}?model=${encodeURIComponent(`${server.base}bench-models/none.gguf`)}${params}`);
  await page.waitForSelector("#link-model", { timeout: 60000 });
  await page.waitForTimeout(2000);
  const idle = pssMiB(root);
  let peak = idle;
  const timer = setInterval(() => { peak = Math.max(peak, pssMiB(root)); }, 100);
  const loadStart = Date.now();
  await page.fill("#model-url", `${server.base}bench-models/${file}`);
  await page.click("#load-url");
  await page.waitForFunction(() => /layers/.test(document.querySelector("#model-info")?.textContent ?? "") && !document.querySelector("#progress"), null, { timeout: 600000 });
  const loadSeconds = (Date.now() - loadStart) / 1000;
  await page.click("#mode-chat");
  await page.fill("#user", "What is the capital of Australia?");
  await page.click("#run");
  await page.waitForSelector('#figure[data-complete="true"]', { timeout: 600000 });
  await page.waitForTimeout(500);
  clearInterval(timer);
  peak = Math.max(peak, pssMiB(root));
  const after = pssMiB(root) - idle;
  const gguf = fs.statSync(path.join(ROOT, "models", file)).size / 1048576;
  const added = peak - idle;
  const run = (await page.textContent("#run-status")).replace("done: ", "");
  console.log(`${file} | ${gguf.toFixed(0)} | ${idle.toFixed(0)} | ${added.toFixed(0)} | ${(added / gguf).toFixed(2)}x | ${after.toFixed(0)} | ${loadSeconds.toFixed(1)} | ${run}`);
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
await server.close();
