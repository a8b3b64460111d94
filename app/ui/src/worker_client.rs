//! The page's handle on its worker: starts it, sends requests, hands its events to the app, and
//! notices when it dies (out of memory, a panic) so the app can start a fresh one. Dropping the
//! handle terminates the worker.

use loupe_protocol::{Event, Request};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker};

/// Trunk's loader shims for the two builds of the worker. The query string changes with every build
/// so a browser never runs a stale worker against a new page (worker files are not content-hashed).
const BASELINE_WORKER_URL: &str = concat!("./loupe-worker_loader.js?build=", env!("LOUPE_BUILD_ID"));
const RELAXED_WORKER_URL: &str = concat!("./loupe-worker-relaxed_loader.js?build=", env!("LOUPE_BUILD_ID"));

/// The smallest module that uses relaxed SIMD: `() -> v128` returning `f32x4.relaxed_madd` of three
/// zero constants. An engine without relaxed SIMD fails to validate it, and would refuse the
/// relaxed worker's whole module the same way.
const RELAXED_PROBE: [u8; 82] = {
    let mut m = [0u8; 82];
    let head: [u8; 25] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
        0x03, 0x02, 0x01, 0x00, // one function of type 0
        0x0a, 0x3d, 0x01, 0x3b, 0x00, // code: one body of 59 bytes, no locals
        0xfd, // v128.const (its opcode 0x0c follows)
    ];
    let mut i = 0;
    while i < head.len() {
        m[i] = head[i];
        i += 1;
    }
    // Three v128.const zeros (the first prefix byte is in `head`), then relaxed_madd and end.
    m[25] = 0x0c;
    m[25 + 17] = 0xfd;
    m[25 + 18] = 0x0c;
    m[25 + 35] = 0xfd;
    m[25 + 36] = 0x0c;
    m[78] = 0xfd;
    m[79] = 0x85;
    m[80] = 0x02;
    m[81] = 0x0b;
    m
};

/// The relaxed-SIMD worker where the engine validates relaxed SIMD, unless `baseline` asks for the
/// SIMD128 one (`?simd=baseline`, which tests use to exercise it).
fn worker_url(baseline: bool) -> &'static str {
    let relaxed = !baseline
        && js_sys::WebAssembly::validate(&js_sys::Uint8Array::from(&RELAXED_PROBE[..]).into()).unwrap_or(false);
    if relaxed {
        RELAXED_WORKER_URL
    } else {
        BASELINE_WORKER_URL
    }
}

pub struct WorkerClient {
    worker: Worker,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl WorkerClient {
    /// Starts a worker (the SIMD128 build if `baseline_simd`, else the best the browser runs).
    /// `on_crash` gets a description when it dies.
    pub fn start(
        on_event: Rc<dyn Fn(Event)>,
        on_crash: Rc<dyn Fn(String)>,
        baseline_simd: bool,
    ) -> Result<Self, String> {
        let worker = Worker::new(worker_url(baseline_simd)).map_err(|e| format!("cannot start the worker: {e:?}"))?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(json) = ev.data().as_string() else { return };
            match serde_json::from_str::<Event>(&json) {
                Ok(event) => on_event(event),
                Err(e) => web_sys::console::error_1(&format!("unreadable worker event: {e}").into()),
            }
        });
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
            ev.prevent_default();
            let detail = ev
                .dyn_ref::<web_sys::ErrorEvent>()
                .map(|e| e.message())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "no details".into());
            on_crash(detail);
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Self { worker, _on_message: on_message, _on_error: on_error })
    }

    pub fn send(&self, request: &Request) {
        self.post(request, None);
    }

    /// Sends a `File` handle with the request; the worker reads it (the page never holds its bytes).
    pub fn send_file(&self, request: &Request, file: &web_sys::File) {
        self.post(request, Some(file));
    }

    fn post(&self, request: &Request, file: Option<&web_sys::File>) {
        let message = js_sys::Object::new();
        let json = serde_json::to_string(request).unwrap_or_default();
        let _ = js_sys::Reflect::set(&message, &"json".into(), &json.into());
        if let Some(f) = file {
            let _ = js_sys::Reflect::set(&message, &"file".into(), f);
        }
        let _ = self.worker.post_message(&message);
    }
}

impl Drop for WorkerClient {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}
