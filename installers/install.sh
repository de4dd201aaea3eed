#!/bin/sh
# sanet-style installer for Linux and macOS: runs installers/install.py with a Python >= 3.10.
#   ./installers/install.sh [--torch cpu|cuda|rocm|mps|existing] [--autostart] [--dry-run] [--uninstall] ...
# Pick the interpreter with PYTHON=/path/to/python3 (for --torch existing: the one that has torch).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -n "${PYTHON:-}" ]; then
    candidates=$PYTHON
else
    candidates="python3 python3.13 python3.12 python3.11 python3.10 python"
fi
for py in $candidates; do
    if command -v "$py" >/dev/null 2>&1 &&
        "$py" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1; then
        exec "$py" "$HERE/install.py" "$@"
    fi
done
echo "sanet-install: no Python >= 3.10 with the venv module found (tried: $candidates)." >&2
echo "Install Python 3.10 or newer (Debian/Ubuntu: sudo apt install python3 python3-venv), or set PYTHON=..." >&2
exit 1
