//! The worker with relaxed-SIMD kernels (feature `relaxed`), for browsers that validate them.
fn main() {
    loupe_worker::start();
}
