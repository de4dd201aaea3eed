#!/usr/bin/env bash
# Set-up of a clone: a .venv in the clone with the CPU torch FIRST (pinned, so pip never resolves a CUDA build),
# then this project in editable mode with its test extras. A second run only checks: it installs nothing when
# the venv already holds this clone at this pyproject.toml (a stamp in .venv records what was installed).
#   --demo     then run `sanet demo`: gets the SANet weights (or says exactly where to put them) and stylizes a
#              generated example image into ./sanet-demo/stylized.png      (README, first command)
#   --editors  also build/refresh the real editors the plug-in tests run in (cached outside the clone):
#              GIMP 3.0.4 in a Debian trixie chroot (~/.cache/sanet-style/gimp-trixie), Krita 5.1.5 + Xvfb from
#              Debian                                                    (README, second command, with pytest)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=${SANET_TORCH_VERSION:-2.13.0}
DEMO=0
EDITORS=0
for arg in "$@"; do
    case "$arg" in
        --demo) DEMO=1 ;;
        --editors) EDITORS=1 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "dev_setup: unknown option $arg (expected --demo and/or --editors)" >&2; exit 2 ;;
    esac
done

STAMP=.venv/.sanet-dev-setup
want_stamp() {
    echo "torch $TORCH_VERSION"
    echo "clone $(pwd -P)"
    echo "pyproject $("$PY" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' pyproject.toml)"
}
installed_ok() {   # the stamp matches and the editable install is this clone's
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(want_stamp)" ] &&
    .venv/bin/python - "$(pwd -P)" <<'EOF' 2>/dev/null
import os, sys
import torch, sanet, sanetd, sanet_client, pytest, hypothesis, pytest_timeout  # noqa: F401
root = sys.argv[1]
sys.exit(0 if os.path.realpath(sanet.__file__).startswith(root + os.sep) else 1)
EOF
}

if [ ! -x .venv/bin/python ]; then
    echo "dev_setup: creating .venv" >&2
    "$PY" -m venv .venv
fi
if installed_ok; then
    echo "dev_setup: .venv is up to date (nothing installed)" >&2
else
    if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
        echo "dev_setup: installing torch==$TORCH_VERSION (CPU)" >&2
        .venv/bin/pip install -q "torch==$TORCH_VERSION"
    fi
    echo "dev_setup: installing sanet-style (editable) with test extras" >&2
    .venv/bin/pip install -q -e '.[test]'
    want_stamp > "$STAMP"
fi
.venv/bin/python -c "import torch, sanet, sanetd, sanet_client; print('dev_setup: ok, torch', torch.__version__)"
if [ "$EDITORS" = 1 ]; then
    bash tests/krita/krita_env.sh
    bash tests/gimp/gimp_env.sh build
fi
if [ "$DEMO" = 1 ]; then
    exec .venv/bin/sanet demo
fi
