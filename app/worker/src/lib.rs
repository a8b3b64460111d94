//! Loupe's Web Worker. It moves messages and bytes: `Request`s arrive as JSON
//! (`transport.rs`), the model arrives as a URL (downloaded and kept in Cache Storage by `loader.rs`)
//! or a dropped `File`; the engine (`loupe_lens::Engine`) does the math in `runner.rs` jobs, and
//! `Event`s stream back. Long work is cut into steps with a yield to the event loop between them, so
//! a Cancel is seen within one step. The same program serves as a lens helper (`lens_pool.rs`).
//!
//! It is built twice (`src/bin`): `loupe-worker` with SIMD128 kernels, which every browser with
//! wasm SIMD runs, and `loupe-worker-relaxed` with relaxed SIMD (fused multiply-add), which a
//! browser without it refuses to compile at all. The page probes for relaxed SIMD and starts one.

mod blob_reader;
mod download;
mod lens_pool;
mod loader;
mod resumable;
mod runner;
mod store;
mod transport;

use loupe_protocol::{Event, Request};
use wasm_bindgen::prelude::*;

/// The worker's entry point.
pub fn start() {
    console_error_panic_hook::set_once();
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(|ev: web_sys::MessageEvent| {
        let data = ev.data();
        // A message from a coordinating worker: this worker is a lens helper.
        if let Some(json) = js_sys::Reflect::get(&data, &"helper".into()).ok().and_then(|v| v.as_string()) {
            let bytes = js_sys::Reflect::get(&data, &"bytes".into()).unwrap_or(JsValue::UNDEFINED);
            return lens_pool::handle(&json, bytes);
        }
        match transport::read_request(&data) {
            Ok((request, file)) => dispatch(request, file),
            Err(message) => transport::post(&Event::Error { run: None, message }),
        }
    });
    transport::scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    transport::post(&Event::Ready);
}

fn dispatch(request: Request, file: Option<web_sys::File>) {
    match request {
        Request::Cancel => runner::cancel(),
        Request::Focus { run, start, end } => runner::focus(run, start..end),
        Request::Configure { lens_workers, resident_limit, fast_int8 } => {
            lens_pool::configure(lens_workers);
            runner::configure_residence(resident_limit);
            runner::configure_fast_lens(fast_int8);
        }
        Request::LoadUrl { url, name } => wasm_bindgen_futures::spawn_local(runner::load_url(url, name)),
        Request::LoadFile { name } => match file {
            Some(file) => wasm_bindgen_futures::spawn_local(runner::load_file(file, name)),
            None => transport::post(&Event::Error { run: None, message: "no file came with the request".into() }),
        },
        Request::Preview { question } => runner::preview(question),
        Request::Run { run, question } => wasm_bindgen_futures::spawn_local(runner::run(run, question)),
        Request::ListCache => wasm_bindgen_futures::spawn_local(store::post_cache_list()),
        Request::ClearCache { url } => wasm_bindgen_futures::spawn_local(async move {
            if let Err(message) = store::clear(url.as_deref()).await {
                // A notice: an error without a run would end whatever load or run is going.
                transport::post(&Event::Notice {
                    message: format!("could not delete from the model store: {message}"),
                });
            }
            store::post_cache_list().await;
        }),
    }
}
