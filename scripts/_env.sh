# Sourced by scripts/run and scripts/test: create the virtualenv and install
# the project (with the embedded servers and the test tools) at the exact
# versions of constraints.txt, when pyproject.toml or constraints.txt changed
# since the last install.
#   ASSETSEARCH_VENV  the virtualenv to use (default .venv)
#   PYTHON            the interpreter that creates it (default python3.11)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${ASSETSEARCH_VENV:-.venv}"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
if [ ! -x "$VENV/bin/python" ]; then
    PYTHON_BIN="${PYTHON:-$(command -v python3.11 || command -v python3)}"
    echo "Creating virtualenv $VENV with $PYTHON_BIN" >&2
    "$PYTHON_BIN" -m venv "$VENV"
fi
# The stamp holds the hash of the pyproject.toml and constraints.txt last installed; it is written
# only after a successful install, so an interrupted one is retried.
stamp="$VENV/.assetsearch-installed"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "Installing assetsearch and its dependencies into $VENV (torch is large: a few minutes the first time)" >&2
    "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[embedded,server,dev]"
    echo "$want" > "$stamp"
fi
export VENV
export PATH="$VENV/bin:$PATH"
