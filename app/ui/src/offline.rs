//! The app shell offline: registers the service worker (`sw.js`, written at build time by
//! `scripts/make-service-worker.py` from `public/sw-template.js`), notices when a new build is waiting
//! so the page can offer to switch, and asks for the bundled model to be kept for offline use.

use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ServiceWorkerContainer, ServiceWorkerRegistration, ServiceWorkerState};

/// The registration and the listeners it needs for the page's lifetime.
#[derive(Default)]
struct Inner {
    registration: Option<ServiceWorkerRegistration>,
    listeners: Vec<Closure<dyn FnMut()>>,
    asked_to_keep_models: bool,
}

#[derive(Clone, Copy)]
pub struct AppShell {
    /// A new build is installed and waiting; the page offers to reload into it.
    pub update_ready: RwSignal<bool>,
    inner: StoredValue<Rc<RefCell<Inner>>, LocalStorage>,
}

fn container() -> Option<ServiceWorkerContainer> {
    let navigator = web_sys::window()?.navigator();
    // Browsers without service workers (or pages not served over http(s)) simply run online.
    js_sys::Reflect::has(&navigator, &"serviceWorker".into()).ok()?.then(|| navigator.service_worker())
}

impl AppShell {
    pub fn register() -> Self {
        let shell = Self { update_ready: RwSignal::new(false), inner: StoredValue::new_local(Rc::default()) };
        let Some(container) = container() else { return shell };
        // A page already controlled by a worker gets updates offered; the very first install is silent.
        let was_controlled = container.controller().is_some();
        let inner = shell.inner.get_value();
        let update_ready = shell.update_ready;
        wasm_bindgen_futures::spawn_local(async move {
            let Ok(registration) = JsFuture::from(container.register("./sw.js")).await else { return };
            let registration: ServiceWorkerRegistration = registration.unchecked_into();
            if was_controlled && registration.waiting().is_some() {
                update_ready.set(true);
            }
            let watched = registration.clone();
            let inner_for_found = inner.clone();
            let on_update_found = Closure::<dyn FnMut()>::new(move || {
                let Some(installing) = watched.installing() else { return };
                let worker = installing.clone();
                let on_state = Closure::<dyn FnMut()>::new(move || {
                    if worker.state() == ServiceWorkerState::Installed && was_controlled {
                        update_ready.set(true);
                    }
                });
                installing.set_onstatechange(Some(on_state.as_ref().unchecked_ref()));
                inner_for_found.borrow_mut().listeners.push(on_state);
            });
            registration.set_onupdatefound(Some(on_update_found.as_ref().unchecked_ref()));
            let mut inner = inner.borrow_mut();
            inner.listeners.push(on_update_found);
            inner.registration = Some(registration);
        });
        shell
    }

    /// Switches to the waiting build: it takes over, and the page reloads into it.
    pub fn apply_update(&self) {
        let Some(container) = container() else { return };
        let reload = Closure::<dyn FnMut()>::new(|| {
            if let Some(w) = web_sys::window() {
                let _ = w.location().reload();
            }
        });
        container.set_oncontrollerchange(Some(reload.as_ref().unchecked_ref()));
        let inner = self.inner.get_value();
        let mut inner = inner.borrow_mut();
        inner.listeners.push(reload);
        if let Some(waiting) = inner.registration.as_ref().and_then(|r| r.waiting()) {
            let _ = waiting.post_message(&"skip-waiting".into());
        }
    }

    /// Once a model has loaded (so the worker has had its chance to store it), asks the service
    /// worker to keep the bundled model too, and the browser not to evict what is stored.
    pub fn keep_for_offline(&self) {
        let inner = self.inner.get_value();
        if std::mem::replace(&mut inner.borrow_mut().asked_to_keep_models, true) {
            return;
        }
        if let Some(storage) = web_sys::window().map(|w| w.navigator().storage()) {
            let _ = storage.persist();
        }
        let Some(container) = container() else { return };
        wasm_bindgen_futures::spawn_local(async move {
            let Ok(ready) = container.ready() else { return };
            let Ok(registration) = JsFuture::from(ready).await else { return };
            let registration: ServiceWorkerRegistration = registration.unchecked_into();
            if let Some(active) = registration.active() {
                let _ = active.post_message(&"store-bundled-models".into());
            }
        });
    }
}
