#!/usr/bin/env bash
# Install without internet, as a field laptop would: `make wheelhouse` fills a directory with every
# wheel Lifeline needs (here from the warm pip cache), then `make install WHEELS=dir` installs into
# a FRESH venv with every package index disabled (no config file, no index URL, --no-index), and the
# installed `lifeline doctor` runs. Slow (a full venv install), so it is a CI step, not a pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

make wheelhouse WHEELS="$work/wheels"
echo "wheelhouse: $(ls "$work/wheels" | wc -l) wheels, $(du -sh "$work/wheels" | cut -f1)"

# No pip config (it may name an index or find-links), an index URL that cannot answer, no cache.
env PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_INDEX_URL=http://127.0.0.1:9/ \
    PIP_NO_CACHE_DIR=1 \
    make install VENV="$work/venv" WHEELS="$work/wheels"

set +e
out="$("$work/venv/bin/lifeline" --config config/drill.toml doctor 2>&1)"
rc=$?
set -e
echo "$out"
# Doctor exits 1 here (no Ollama on CI): what matters is that everything imported and checked.
if [[ $rc -gt 1 ]] || grep -q Traceback <<<"$out" || ! grep -q "✓ config" <<<"$out" \
    || ! grep -q "protocol library" <<<"$out"; then
    echo "offline install: lifeline doctor failed (exit $rc)" >&2
    exit 1
fi
echo "offline install: ok"
