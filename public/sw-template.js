// Loupe's service worker, written into the site by scripts/make-service-worker.py at build time,
// which fills in the build id and the lists of shell files and bundled models below.
//
// - The app shell (page, styles, both wasm binaries, the worker scripts) is precached in a cache
//   named after this build, and served from it: a page and its worker always come from one build.
// - A new build installs beside the old one and waits; the page offers to switch ("skip-waiting").
// - The bundled model lives in the store the worker itself reads (`loupe-models-v1`), so it is kept
//   once; the page asks for it to be stored ("store-bundled-models") after its first model loads.
// - Anything else (models on other hosts) goes to the network untouched.
const BUILD = "__BUILD__";
const SHELL = __SHELL__;
const MODELS = __MODELS__;
const SHELL_CACHE = `loupe-shell-${BUILD}`;
const MODEL_CACHE = "loupe-models-v1";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL.map((u) => new Request(u, { cache: "reload" })))));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("loupe-shell-") && name !== SHELL_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  if (event.data === "skip-waiting") self.skipWaiting();
  if (event.data === "store-bundled-models") event.waitUntil(storeBundledModels());
});

async function storeBundledModels() {
  const store = await caches.open(MODEL_CACHE);
  for (const model of MODELS) {
    const url = new URL(model, self.registration.scope).href;
    if (await store.match(url)) continue;
    try {
      const response = await fetch(url);
      if (!response.ok) continue;
      // The body streams from the network into the store when its size is announced: reading it
      // into an ArrayBuffer held the whole model in this worker's memory, the largest spike of a
      // page's first load. Only a host that hides the size (compressed, chunked) needs the buffer.
      const announced = Number(response.headers.get("content-length"));
      const encoded = (response.headers.get("content-encoding") ?? "identity") !== "identity";
      const body = announced > 0 && !encoded && response.body ? response.body : await response.arrayBuffer();
      const bytes = body instanceof ArrayBuffer ? body.byteLength : announced;
      const headers = { "content-type": "application/octet-stream", "x-loupe-bytes": String(bytes) };
      await store.put(url, new Response(body, { headers }));
    } catch (e) {
      // Offline or storage full: the app still works online; it just is not kept.
    }
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const shell = await caches.open(SHELL_CACHE);
    // ignoreSearch: the page's URL carries the question, the worker's a build id.
    const cached = await shell.match(request, { ignoreSearch: true });
    if (cached) return cached;
    try {
      return await fetch(request);
    } catch (offline) {
      const stored = await caches.match(request, { ignoreSearch: true });
      if (stored) return stored;
      throw offline;
    }
  })());
});
