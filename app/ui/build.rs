//! Gives the page a build id that changes whenever the worker's code does, so the worker URL
//! changes with it and a browser never pairs a new page with a cached old worker.

use std::hash::{Hash, Hasher};
use std::path::Path;

fn hash_dir(dir: &Path, h: &mut std::collections::hash_map::DefaultHasher) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            hash_dir(&p, h);
        } else if let Ok(bytes) = std::fs::read(&p) {
            p.file_name().hash(h);
            bytes.hash(h);
        }
    }
}

fn main() {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for dir in ["worker/src", "lens/src", "protocol/src"] {
        println!("cargo:rerun-if-changed={}", app.join(dir).display());
        hash_dir(&app.join(dir), &mut h);
    }
    println!("cargo:rustc-env=LOUPE_BUILD_ID={:016x}", h.finish());
}
