// Decode benchmark (not a test): prefill and decode tokens per second of an answer in Loupe's page
// beside wllama (llama.cpp compiled to wasm; @wllama/wllama, a dev dependency of this benchmark
// only), on the same GGUF and the same prompt text, in the same headless Chromium. wllama runs with
// 1 thread on a page without cross-origin isolation (as Loupe's page is) and with 2 threads on a page
// served with COOP: same-origin and COEP: require-corp (SharedArrayBuffer, so pthreads).
//   node bench/decode-bench.mjs        (after scripts/build-app.sh)
//   N=64 REPEAT=3 PRECISIONS=exact,fast THREADS=1,2 MODELS=SmolLM2-135M-Instruct.Q4_1.gguf node bench/decode-bench.mjs
//   PROMPT="…" (the chat question), RAW="…" (the raw text; RAW= to leave the raw prompt out)
// Two prompts: the chat question through the model's template (the Australia question), where
// Loupe's answer ends at the end-of-turn token after a few tokens (it has no ignore-EOS switch),
// and a raw text without template, whose continuation runs to N tokens, so that Loupe's decode is
// measured over as many steps as wllama's. Each configuration: one warm-up, then the best of REPEAT.
// What is measured:
// - Loupe: the page's worker streams an `AnswerToken` event per token; a wrapper around the page's
//   `Worker` timestamps each event as it reaches the page (performance.now). The worker posts token
//   k once it is picked and, unless it is the last, once the model has run it (the next token's
//   logits). Prefill = the prompt's tokens / (first `AnswerToken` − first `Sequence`) of a run with
//   a 1-token answer: the prompt's forward pass filling its KV cache, the last position's full
//   unembedding and the pick, nothing else. Decode = (n − 2) / (token n−1 − token 1) of a run with
//   up to N tokens: each of those intervals is one step (one token through every layer, the full
//   unembedding, the pick, the event and the worker's yield to its event loop). "last-token gap" is
//   the interval before the last token, which runs no layer: the per-token cost outside the model.
//   The lens that follows each answer is not timed.
// - wllama: createCompletion on the same text (the template as Loupe rendered it, so the token
//   counts must agree; a note says when they do not), greedy, ignore_eos, max_tokens N, no prompt
//   cache. Prefill = llama.cpp's timings.prompt_n / prompt_ms (the prompt's batch and the first
//   pick). Decode = (predicted_n − 1) / predicted_ms: llama-server starts predicted_ms once the
//   first token is picked, so it spans predicted_n − 1 steps (its own predicted_per_second, in the
//   notes, is the same quotient in this version).
// Progress goes to stderr, the table to stdout.
import path from "node:path";
import { serve, browser, waitForModel, ROOT } from "../e2e/harness.mjs";

const MODELS = (process.env.MODELS ?? "SmolLM2-135M-Instruct.Q4_1.gguf,qwen2.5-coder-0.5b-instruct.gguf").split(",");
const PROMPTS = [
  { kind: "chat", text: process.env.PROMPT ?? "What is the capital of Australia?" },
  { kind: "raw", text: process.env.RAW ?? "The Eiffel Tower is in the city of" },
].filter((p) => p.text);
const N = Number(process.env.N ?? 64);
const REPEAT = Number(process.env.REPEAT ?? 3);
const PRECISIONS = (process.env.PRECISIONS ?? "exact,fast").split(",");
const THREADS = (process.env.THREADS ?? "1,2").split(",").map(Number);
const MODEL_DIR = path.join(ROOT, "models");
const WLLAMA = path.join(ROOT, "tests/node_modules/@wllama/wllama/esm"); // index.js and wasm/wllama.wasm
const ISOLATION = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
const TIMEOUT = 900_000;
const T0 = Date.now();
const log = (text) => console.error(`[${((Date.now() - T0) / 1000).toFixed(0)} s] ${text}`);

// Loupe's page: every worker event the page receives, with its arrival time (lens rows, progress
// and previews left out; they are large or many and not needed).
const RECORDER = () => {
  window.__loupe = [];
  const Native = window.Worker;
  window.Worker = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        const t = performance.now();
        if (typeof e.data !== "string" || !e.data.startsWith('{"')) return;
        const kind = e.data.slice(2, e.data.indexOf('"', 2));
        if (kind === "Rows" || kind === "Progress" || kind === "Preview") return;
        window.__loupe.push({ t, kind, data: e.data });
      });
    }
  };
};

async function loupeRun(page, answer) {
  await page.fill("#answer", String(answer));
  await page.evaluate(() => { window.__loupe.length = 0; });
  await page.click("#run");
  await page.waitForFunction(() => window.__loupe.some((e) => ["Done", "Error", "Cancelled"].includes(e.kind)), null, { timeout: TIMEOUT });
  await page.waitForSelector("#cancel-run:disabled", { timeout: TIMEOUT });
  const events = await page.evaluate(() => window.__loupe.map((e) => ({ ...e, data: JSON.parse(e.data)[e.kind] })));
  const failed = events.find((e) => e.kind === "Error" || e.kind === "Cancelled");
  if (failed) throw new Error(`Loupe run failed: ${JSON.stringify(failed.data)}`);
  const sequence = events.find((e) => e.kind === "Sequence");
  const tokens = events.filter((e) => e.kind === "AnswerToken");
  return { start: sequence.t, sequence: sequence.data.sequence, times: tokens.map((e) => e.t), tokens: tokens.map((e) => e.data.token) };
}

async function loupe(chromium) {
  const server = await serve(undefined, { "/bench-models/": MODEL_DIR });
  const page = await chromium.context.newPage();
  page.on("pageerror", (e) => console.error(`Loupe page: ${e.message}`));
  await page.addInitScript(RECORDER);
  await page.goto(server.base);
  await waitForModel(page);
  const agent = await page.evaluate(() => navigator.userAgent.match(/\w*Chrome\/[\d.]+/)?.[0] ?? navigator.userAgent);
  const rows = [];
  const infos = {};
  for (const file of MODELS) {
    // By URL, as a user would; the bundled SmolLM2 is the same file, loaded again for uniformity.
    log(`Loupe: loading ${file}`);
    await page.evaluate(() => { window.__loupe.length = 0; });
    await page.fill("#model-url", `${server.base}bench-models/${file}`);
    await page.click("#load-url");
    await page.waitForFunction((f) => window.__loupe.some((e) => e.kind === "ModelLoaded" && JSON.parse(e.data).ModelLoaded.info.file === f)
      || window.__loupe.some((e) => e.kind === "Error"), file, { timeout: TIMEOUT });
    await waitForModel(page, TIMEOUT);
    await page.waitForSelector("#load-url:enabled", { timeout: TIMEOUT });
    infos[file] = await page.textContent("#model-info");
    for (const prompt of PROMPTS) {
      await page.click(`#mode-${prompt.kind}`);
      await page.fill(prompt.kind === "chat" ? "#user" : "#raw", prompt.text);
      for (const precision of PRECISIONS) {
        await page.selectOption("#precision", precision);
        log(`Loupe ${file} ${prompt.kind} ${precision}`);
        await loupeRun(page, N); // warm-up
        let prefill = 0;
        let decode = 0;
        let sequence;
        let answer;
        let gap = Infinity;
        for (let i = 0; i < REPEAT; i++) {
          const r = await loupeRun(page, 1);
          sequence = r.sequence;
          prefill = Math.max(prefill, r.sequence.prompt_len / ((r.times[0] - r.start) / 1000));
        }
        for (let i = 0; i < REPEAT; i++) {
          const r = await loupeRun(page, N);
          const n = r.times.length;
          answer = r.tokens;
          if (n >= 3) decode = Math.max(decode, (n - 2) / ((r.times[n - 2] - r.times[0]) / 1000));
          if (n >= 2) gap = Math.min(gap, r.times[n - 1] - r.times[n - 2]);
        }
        const end = answer.length < N ? `ended by ${JSON.stringify(answer[answer.length - 1].piece)}` : "ran to N";
        rows.push({ file, prompt: prompt.kind, engine: `Loupe ${precision}`, threads: 1, promptTokens: sequence.prompt_len, prefill,
          answerTokens: answer.length, decode, note: `${end}; last-token gap ${gap.toFixed(1)} ms`,
          promptText: sequence.text, answerText: answer.map((t) => t.text).join("") });
      }
    }
  }
  await page.close();
  await server.close();
  return { rows, infos, agent };
}

// One model load per page (threads are fixed at loadModel), every prompt on it.
const WLLAMA_PAGE = `<!doctype html><meta charset="utf-8"><title>wllama decode bench</title><link rel="icon" href="data:,"><script type="module">
import { Wllama } from "/index.js";
window.bench = async ({ model, threads, prompts, n, repeat }) => {
  const w = new Wllama({ default: new URL("/wasm/wllama.wasm", location.href).href }, { suppressNativeLog: true, allowOffline: true });
  w.setCompat(null); // never the CDN's compat build (needed only without JSPI or Memory64)
  const blob = await (await fetch(model)).blob();
  await w.loadModel([blob], { n_threads: threads, n_gpu_layers: 0, n_ctx: 1024 });
  const env = { isolated: self.crossOriginIsolated, multithread: w.isMultithread(), threads: w.getNumThreads() };
  console.log("bench: loaded");
  const results = [];
  for (const prompt of prompts) {
    const run = () => w.createCompletion({ prompt, max_tokens: n, temperature: 0, ignore_eos: true, cache_prompt: false });
    await run(); // warm-up
    const runs = [];
    for (let i = 0; i < repeat; i++) {
      const r = await run();
      runs.push({ timings: r.timings, text: r.choices[0].text, finish: r.choices[0].finish_reason });
    }
    console.log("bench: prompt done");
    results.push(runs);
  }
  await w.exit();
  return { ...env, results };
};
window.ready = true;
</script>`;

async function wllama(chromium, prompts) {
  const rows = [];
  for (const threads of THREADS) {
    const server = await serve(WLLAMA, { "/models/": MODEL_DIR }, threads > 1 ? ISOLATION : {});
    server.replace["/bench.html"] = WLLAMA_PAGE;
    for (const file of MODELS) {
      log(`wllama ${file} ${threads} thread(s)`);
      const mine = prompts.filter((p) => p.file === file);
      const page = await chromium.context.newPage();
      page.on("pageerror", (e) => console.error(`wllama page: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") console.error(`wllama page: ${m.text()}`);
        else if (m.text().startsWith("bench: ")) log(`  ${m.text().slice(7)}`);
      });
      await page.goto(`${server.base}bench.html`);
      await page.waitForFunction(() => window.ready);
      let timer;
      const r = await Promise.race([
        page.evaluate((a) => window.bench(a), { model: `/models/${file}`, threads, prompts: mine.map((p) => p.text), n: N, repeat: REPEAT }),
        new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`no answer in ${TIMEOUT / 1000} s`)), TIMEOUT); }),
      ]).catch((e) => ({ error: e.message })).finally(() => clearTimeout(timer));
      await page.close();
      mine.forEach((p, i) => {
        const row = { file, prompt: p.kind, engine: "wllama 3.13.0", threads, promptTokens: "–", prefill: NaN, answerTokens: "–", decode: NaN, answerText: "" };
        if (r.error) {
          rows.push({ ...row, note: `failed: ${r.error}` });
          return;
        }
        const runs = r.results[i];
        const t = runs.map((x) => x.timings);
        const last = runs[runs.length - 1];
        const notes = [`llama.cpp's own ${Math.max(...t.map((x) => x.predicted_per_second)).toFixed(1)}`, `${r.isolated ? "" : "not "}cross-origin isolated`];
        if (r.threads !== threads) notes.push(`asked ${threads} threads, got ${r.threads}`);
        if (t.some((x) => x.cache_n > 0)) notes.push(`prompt cache used (${t.map((x) => x.cache_n)})`);
        if (last.timings.prompt_n !== p.promptTokens) notes.push(`PROMPT TOKENS DIFFER from Loupe's ${p.promptTokens}`);
        rows.push({ ...row, threads: r.threads, promptTokens: last.timings.prompt_n, answerTokens: last.timings.predicted_n,
          prefill: Math.max(...t.map((x) => x.prompt_n / (x.prompt_ms / 1000))),
          decode: Math.max(...t.map((x) => (x.predicted_n - 1) / (x.predicted_ms / 1000))),
          note: notes.join("; "), answerText: last.text });
      });
    }
    await server.close();
  }
  return rows;
}

const chromium = await browser();
const loupeResult = await loupe(chromium);
// wllama gets the text exactly as Loupe tokenized it (one per model and prompt).
const prompts = loupeResult.rows.filter((r, i, all) => all.findIndex((x) => x.file === r.file && x.prompt === r.prompt) === i)
  .map((r) => ({ file: r.file, kind: r.prompt, text: r.promptText, promptTokens: r.promptTokens }));
const wllamaRows = await wllama(chromium, prompts);
await chromium.close();

const all = [...loupeResult.rows, ...wllamaRows];
console.log(`${loupeResult.agent}; answers of up to N = ${N} tokens, greedy; best of ${REPEAT} after a warm-up`);
for (const p of PROMPTS) console.log(`${p.kind}: ${JSON.stringify(p.text)}`);
console.log("model                            | prompt | engine        | threads | prompt tok | prefill tok/s | answer tok | decode tok/s | notes");
for (const file of MODELS) {
  for (const r of all.filter((x) => x.file === file)) {
    console.log(`${file.slice(0, 32).padEnd(32)} | ${r.prompt.padEnd(6)} | ${r.engine.padEnd(13)} | ${String(r.threads).padStart(7)} | ${String(r.promptTokens).padStart(10)} | ${r.prefill.toFixed(1).padStart(13)} | ${String(r.answerTokens).padStart(10)} | ${r.decode.toFixed(1).padStart(12)} | ${r.note}`);
  }
}
console.log("\nAnswers (greedy; the same text means the same work):");
for (const r of all) console.log(`${r.file} ${r.prompt} ${r.engine} ${r.threads}t: ${JSON.stringify(r.answerText)}`);
console.log("\nPrompts as Loupe rendered them (and wllama was given):");
for (const p of prompts) console.log(`${p.file} ${p.kind}: ${JSON.stringify(p.text)}`);
for (const [file, info] of Object.entries(loupeResult.infos)) console.log(`Loupe ${file}: ${info}`);
