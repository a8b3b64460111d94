#!/usr/bin/env python3
"""Trunk post-build hook: writes the service worker (sw.js) into the staged site.

The service worker precaches the app shell (every file trunk staged, except the bundled model) in a
cache named after a hash of those files, so one build's page, worker scripts and wasm are always
served together and a new deployment never mixes with an old one. The bundled model goes into the
model store the worker itself reads (Cache Storage `loupe-models-v1`), so it is kept once.
The template is public/sw-template.js; this fills in BUILD, SHELL and MODELS."""
import hashlib
import json
import os
from pathlib import Path

staging = Path(os.environ["TRUNK_STAGING_DIR"])
template = Path(__file__).resolve().parent.parent / "public" / "sw-template.js"

shell, models = [], []
digest = hashlib.sha256()
for path in sorted(p for p in staging.rglob("*") if p.is_file()):
    rel = path.relative_to(staging).as_posix()
    if rel == "sw.js":
        continue
    if rel.startswith("models/"):
        if rel.endswith(".gguf"):
            models.append(rel)
        continue
    shell.append(rel)
    digest.update(rel.encode())
    digest.update(path.read_bytes())

build = digest.hexdigest()[:16]
# "./" is the page itself (index.html served for the directory URL).
source = (template.read_text()
          .replace("__BUILD__", build)
          .replace("__SHELL__", json.dumps(["./"] + shell))
          .replace("__MODELS__", json.dumps(models)))
(staging / "sw.js").write_text(source)
print(f"sw.js: build {build}, {len(shell)} shell files, {len(models)} bundled model(s)")
