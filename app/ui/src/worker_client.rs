//! The page's handle on its worker: starts it, sends requests, hands its events to the app, and
//! notices when it dies (out of memory, a panic) so the app can start a fresh one. Dropping the
//! handle terminates the worker.

use loupe_protocol::{Event, Request};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker};

/// Trunk's loader shim for the worker binary. The query string changes with every build so a
/// browser never runs a stale worker against a new page (worker files are not content-hashed).
const WORKER_URL: &str = concat!("./loupe-worker_loader.js?build=", env!("LOUPE_BUILD_ID"));

pub struct WorkerClient {
    worker: Worker,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl WorkerClient {
    /// Starts a worker. `on_crash` gets a description when it dies.
    pub fn start(on_event: Rc<dyn Fn(Event)>, on_crash: Rc<dyn Fn(String)>) -> Result<Self, String> {
        let worker = Worker::new(WORKER_URL).map_err(|e| format!("cannot start the worker: {e:?}"))?;
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
