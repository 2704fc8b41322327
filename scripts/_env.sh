# Shared by scripts/run and scripts/test: create the virtualenv and install the
# project (with the embedded servers and test tools) when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${ASSETSEARCH_VENV:-.venv}"
PYTHON_BIN="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating virtualenv $VENV with $PYTHON_BIN" >&2
    "$PYTHON_BIN" -m venv "$VENV"
fi
stamp="$VENV/.assetsearch-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "Installing assetsearch and its dependencies into $VENV (torch is large: a few minutes the first time)" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[embedded,dev]"
    echo "$want" > "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"
