# Sourced by ./run and ./test: a Python 3.10 virtual environment with the pinned dependencies.
# Installs only when requirements.txt or constraints.txt changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

find_python310() {
  local candidate
  for candidate in "${PYTHON:-}" python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
      command -v "$candidate" 2>/dev/null || echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PY310="$(find_python310)" || {
    echo "Python 3.10 is required (Rasa 3.6 supports 3.8-3.10). Install it, or set PYTHON=/path/to/python3.10." >&2
    exit 1
  }
  echo "• creating the virtual environment with $PY310"
  "$PY310" -m venv "$VENV"
fi

STAMP="$VENV/.installed"
WANT="$(cat "$ROOT/requirements.txt" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "• installing the pinned dependencies (first time: a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip<26" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r "$ROOT/requirements.txt" -c "$ROOT/constraints.txt" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip check
  echo "$WANT" > "$STAMP"
fi

if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "• installing redis-server (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "No redis-server found and no REDIS_URL set: install redis-server (e.g. apt-get install redis-server)." >&2
    exit 1
  fi
fi

# Rasa must never send telemetry or crash reports (they could carry conversation data).
export RASA_TELEMETRY_ENABLED=false
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
