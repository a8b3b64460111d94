//! Native threads for the per-cell folding; in wasm32 one thread (the browser splits work across
//! workers instead, see `wire.rs`).

/// Runs `work(first_cell_index, cells)` over disjoint chunks, on all cores where threads exist.
pub(super) fn for_each_chunk<T: Send>(items: &mut [T], work: impl Fn(usize, &mut [T]) + Sync) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if threads > 1 && items.len() >= 2 * threads {
            let chunk = items.len().div_ceil(threads);
            std::thread::scope(|s| {
                for (i, part) in items.chunks_mut(chunk).enumerate() {
                    let work = &work;
                    s.spawn(move || work(i * chunk, part));
                }
            });
            return;
        }
    }
    work(0, items)
}
