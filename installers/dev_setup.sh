#!/usr/bin/env bash
# Developer/CI set-up: a .venv in the clone with the CPU torch FIRST (pinned, so pip never resolves a CUDA build),
# then this project in editable mode with its test extras. Idempotent: a second run only checks.
# --editors also builds/refreshes the real editors the plug-in tests run in (cached outside the clone):
#   GIMP 3.0.4 in a Debian trixie chroot (~/.cache/sanet-style/gimp-trixie), Krita 5.1.5 + Xvfb from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=${SANET_TORCH_VERSION:-2.13.0}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    echo "dev_setup: installing torch==$TORCH_VERSION" >&2
    .venv/bin/pip install -q "torch==$TORCH_VERSION"
fi
echo "dev_setup: installing sanet-style (editable) with test extras" >&2
.venv/bin/pip install -q -e '.[test]'
.venv/bin/python -c "import torch, sanet, sanetd, sanet_client; print('dev_setup: ok, torch', torch.__version__)"
if [ "${1:-}" = "--editors" ]; then
    bash tests/krita/krita_env.sh
    bash tests/gimp/gimp_env.sh build
fi
