#!/bin/sh
# Install Krita 5 (Debian package) and what its Python needs to run the sanet-style plug-in
# and its tests: PyQt5 (without it `import krita` fails), pyzmq and msgpack for sanet_client,
# Xvfb + xauth for the GUI load test. Idempotent: installs only what is missing, says what it does.
set -eu

PKGS="krita python3-pyqt5 python3-zmq python3-msgpack xvfb xauth"

missing=""
for p in $PKGS; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        echo "krita_env: $p already installed"
    else
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "krita_env: nothing to install"
else
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    echo "krita_env: apt-get update"
    $SUDO apt-get update
    echo "krita_env: apt-get install -y --no-install-recommends$missing"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi

# Check the result the way the tests will use it.
command -v kritarunner >/dev/null || { echo "krita_env: kritarunner not found after install" >&2; exit 1; }
command -v Xvfb >/dev/null || { echo "krita_env: Xvfb not found after install" >&2; exit 1; }
/usr/bin/python3 -c "import PyQt5.QtCore, zmq, msgpack" \
    || { echo "krita_env: /usr/bin/python3 cannot import PyQt5/zmq/msgpack" >&2; exit 1; }
echo "krita_env: ready ($(dpkg-query -W -f='${Version}' krita))"
