#!/usr/bin/env bash
# Create .venv and install qa-console with every extra. Quick when nothing changed.
#
# torch is installed first and pinned exactly (2.13.0, the CPU wheel): a looser requirement
# resolved by pip pulls a multi-GB CUDA build on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=".venv"
EXTRAS="${QA_CONSOLE_EXTRAS:-all,dev}"
TORCH_VERSION="2.13.0"

stamp_key="$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)-${EXTRAS}"
stamp="$VENV/.installed-$stamp_key"
if [[ -f "$stamp" ]]; then
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if [[ ",$EXTRAS," == *",all,"* || ",$EXTRAS," == *",model,"* || ",$EXTRAS," == *",train,"* || ",$EXTRAS," == *",local,"* ]]; then
    echo "installing torch==$TORCH_VERSION (CPU)"
    "$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION"
fi
echo "installing qa-console[$EXTRAS]"
# The build backend's warnings are noise on success; show them only when the install fails.
log="$(mktemp)"
if ! "$VENV/bin/python" -m pip install --quiet -e ".[$EXTRAS]" >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
rm -f "$log"
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "installed: $VENV/bin/qa-console"
