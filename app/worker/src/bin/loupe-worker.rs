//! The worker with SIMD128 kernels, for every browser with wasm SIMD.
fn main() {
    loupe_worker::start();
}
