//! Messages in and out of the worker: JSON strings, plus an optional `File` beside a request.

use js_sys::Reflect;
use loupe_protocol::{Event, Request};
use wasm_bindgen::prelude::*;

pub fn scope() -> web_sys::DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

pub fn post(event: &Event) {
    match serde_json::to_string(event) {
        Ok(json) => {
            let _ = scope().post_message(&JsValue::from_str(&json));
        }
        Err(e) => web_sys::console::error_1(&format!("cannot encode event: {e}").into()),
    }
}

/// The page sends `{ json: string, file?: File }`.
pub fn read_request(data: &JsValue) -> Result<(Request, Option<web_sys::File>), String> {
    let json =
        Reflect::get(data, &"json".into()).ok().and_then(|v| v.as_string()).ok_or("a message without a request")?;
    let request = serde_json::from_str(&json).map_err(|e| format!("unreadable request: {e}"))?;
    let file = Reflect::get(data, &"file".into()).ok().and_then(|f| f.dyn_into::<web_sys::File>().ok());
    Ok((request, file))
}

/// Lets the worker's event loop run (and deliver a Cancel) before the next step. A message the
/// worker sends itself, not `setTimeout(0)`: chained timers are clamped to 4 ms after five levels
/// of nesting, which an answer would pay on every token.
pub async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        YIELD.with(|y| match y {
            Some(y) => {
                y.waiting.borrow_mut().push_back(resolve);
                let _ = y.channel.port2().post_message(&JsValue::NULL);
            }
            None => {
                let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
            }
        })
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// One channel for every yield: each message wakes the oldest waiting step (messages arrive in
/// order), so two tasks yielding at once each get their turn.
struct SelfMessages {
    channel: web_sys::MessageChannel,
    waiting: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<js_sys::Function>>>,
    _on_message: Closure<dyn FnMut()>,
}

thread_local! {
    static YIELD: Option<SelfMessages> = web_sys::MessageChannel::new().ok().map(|channel| {
        let waiting: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<js_sys::Function>>> = Default::default();
        let wake = waiting.clone();
        let on_message = Closure::<dyn FnMut()>::new(move || {
            if let Some(resolve) = wake.borrow_mut().pop_front() {
                let _ = resolve.call0(&JsValue::NULL);
            }
        });
        channel.port1().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        SelfMessages { channel, waiting, _on_message: on_message }
    });
}

pub fn now_seconds() -> f64 {
    scope().performance().map(|p| p.now() / 1000.0).unwrap_or(0.0)
}
