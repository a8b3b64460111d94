//! The native tool's deadline for a chat template. minijinja's fuel bounds the instructions a
//! template runs, but some work happens outside any instruction: constant expressions folded while
//! compiling (`{{ (10**9 * ['a']) ~ 'x' }}`) and lazy sequences walked inside one
//! (`{{ 'z' in 10**15 * ['a'] }}`). Such a render never ends. A watcher thread stops the tool with
//! one line when one render has gone on for longer than any real template needs.

use std::time::{Duration, Instant};

/// Real templates render in milliseconds; this leaves room for a slow machine.
pub const DEFAULT: Duration = Duration::from_secs(30);

/// Watches every render from now on; `fail` is called (and must not return) when one outlasts `limit`.
pub fn watch(limit: Duration, fail: fn(&str) -> !) {
    std::thread::spawn(move || {
        let mut current: Option<(usize, Instant)> = None;
        loop {
            std::thread::sleep(Duration::from_millis(100));
            current = match (loupe_lens::template::render_in_progress(), current) {
                (Some(n), Some((m, since))) if n == m => {
                    if since.elapsed() > limit {
                        fail(&format!(
                            "the chat template did not finish rendering within {} s (a template that never ends)",
                            limit.as_secs()
                        ));
                    }
                    Some((m, since))
                }
                (Some(n), _) => Some((n, Instant::now())),
                (None, _) => None,
            };
        }
    });
}
