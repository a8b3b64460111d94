//! The native tool's memory budget. A GGUF's chat template runs in minijinja, which bounds the
//! instructions a template runs (fuel) but not the memory its values take:
//! `{% set ns.s = ns.s + ns.s %}` forty times asks for a terabyte. Rust cannot turn a failed
//! allocation into an error (it aborts), and before an allocation fails the system swaps or its
//! out-of-memory killer strikes. So the tool counts the bytes it holds and, when an allocation would
//! take it past the budget, stops with one line on stderr and status 1, like any other bad input.
//!
//! The budget is `--memory-limit`, or else four times the model file plus 2 GiB (the weights, an
//! f32 unembedding and the lens's tiles fit well inside), and never more than three quarters of the
//! memory the system has available when the tool starts (Linux's `MemAvailable`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Budgeted;

static HELD: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Caps what the tool may hold from now on.
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
}

/// The budget for a model file of `file_bytes` when none is given.
pub fn default_limit(file_bytes: u64) -> usize {
    let for_the_model = usize::try_from(file_bytes).unwrap_or(usize::MAX).saturating_mul(4).saturating_add(2 << 30);
    match available() {
        Some(free) => for_the_model.min(free / 4 * 3),
        None => for_the_model,
    }
}

/// The memory available to a new process, from `/proc/meminfo` (Linux only).
fn available() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Counts `grow` more bytes held, or stops the tool when that passes the budget.
fn take(grow: usize) {
    let held = HELD.fetch_add(grow, Ordering::Relaxed).saturating_add(grow);
    let limit = LIMIT.load(Ordering::Relaxed);
    if held > limit {
        over_budget(held, limit);
    }
}

/// Ends the process from inside the allocator: no allocation, no unwinding (an allocator must not
/// unwind), only a fixed line written to stderr.
#[cold]
fn over_budget(held: usize, limit: usize) -> ! {
    let mut line = [0u8; 512];
    let mut out = &mut line[..];
    let _ = writeln!(
        out,
        "loupe: error: loupe needs more than its memory budget of {} MiB ({} MiB asked); a chat template that builds huge strings does this; --memory-limit raises the budget",
        limit >> 20,
        held >> 20
    );
    let len = 512 - out.len();
    let _ = std::io::stderr().write_all(&line[..len]);
    std::process::exit(1);
}

unsafe impl GlobalAlloc for Budgeted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        take(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        take(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            take(new_size - layout.size());
        }
        let moved = System.realloc(ptr, layout, new_size);
        if new_size < layout.size() {
            HELD.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        moved
    }
}
