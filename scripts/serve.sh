#!/usr/bin/env bash
# Installs what is missing, fetches the default model, builds the app and serves dist/ on
# http://127.0.0.1:${PORT:-8080} as any static host would (no special headers needed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh
scripts/build-app.sh
echo "Loupe: http://127.0.0.1:${PORT:-8080}/"
exec python3 -m http.server "${PORT:-8080}" --bind 127.0.0.1 --directory dist
