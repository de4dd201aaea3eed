#!/bin/sh
# Build (once) and use a Debian trixie chroot that holds GIMP 3.0 for the headless end-to-end test.
#
#   tests/gimp/gimp_env.sh build        create or complete the cached chroot (idempotent, safe to re-run)
#   tests/gimp/gimp_env.sh path         print the chroot folder
#   tests/gimp/gimp_env.sh check        exit 0 when the chroot is ready
#   tests/gimp/gimp_env.sh run [-b HOSTDIR:CHROOTDIR]... -- CMD ARGS...
#                                       run CMD inside the chroot in a private mount namespace
#                                       (/proc, /dev, /dev/shm and the bind mounts vanish with it)
#
# The chroot lives outside the clone so that CI can cache it between runs:
#   ${SANET_GIMP_CHROOT:-~/.cache/sanet-style/gimp-trixie}
# Needs root (debootstrap, chroot, mount) and access to a Debian mirror the first time only.
set -eu

ROOT=${SANET_GIMP_CHROOT:-${HOME}/.cache/sanet-style/gimp-trixie}
MIRROR=${SANET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# xvfb + xdotool: the undo check drives GIMP's real UI (Ctrl+Z) on a virtual X display
PACKAGES="gimp python3-gi gir1.2-gimp-3.0 python3-zmq python3-msgpack xvfb xdotool"
STAMP="$ROOT/.sanet-style-ready"

say() { echo "gimp_env: $*" >&2; }

is_ready() {
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PACKAGES" ] && [ -x "$ROOT/usr/bin/gimp-console-3.0" ]
}

build() {
    if is_ready; then
        say "chroot already built at $ROOT (reusing the cache)"
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        say "building the GIMP chroot needs root (debootstrap + chroot)"; exit 2
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap on the host (apt-get install debootstrap)"
        apt-get install -y --no-install-recommends debootstrap >&2 || {
            apt-get update >&2 && apt-get install -y --no-install-recommends debootstrap >&2; }
    fi
    mkdir -p "$(dirname "$ROOT")"
    # One builder at a time: a second caller waits, then finds the cache ready.
    exec 9>"$ROOT.lock"
    flock 9
    if is_ready; then say "chroot was built meanwhile at $ROOT"; return 0; fi

    if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -f "$ROOT/.sanet-debootstrap-done" ]; then
        say "debootstrap --variant=minbase trixie $ROOT $MIRROR (about 1 minute)"
        rm -rf "$ROOT"
        debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >&2
        touch "$ROOT/.sanet-debootstrap-done"
    else
        say "debootstrap already done in $ROOT, continuing"
    fi
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
    # Keep the chroot small: no docs, no man pages.
    cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-sanet-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-include /usr/share/doc/*/copyright
EOF
    say "apt-get install --no-install-recommends $PACKAGES inside the chroot (about 3 minutes, ~1 GB)"
    unshare -m --propagation private sh -eu -c '
        R=$1; shift
        mkdir -p "$R/proc" "$R/dev"
        mount -t proc proc "$R/proc"
        mount --rbind /dev "$R/dev"
        chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            LANG=C.UTF-8 sh -eu -c "apt-get update && apt-get install -y --no-install-recommends $* && apt-get clean"
    ' sh "$ROOT" $PACKAGES >&2
    chroot "$ROOT" gimp-console-3.0 --version >&2
    echo "$PACKAGES" >"$STAMP"
    say "ready: $ROOT"
}

run() {
    is_ready || { say "chroot not built; run: $0 build"; exit 3; }
    binds=""
    while [ $# -gt 0 ]; do
        case "$1" in
            -b) binds="$binds $2"; shift 2 ;;
            --) shift; break ;;
            *) break ;;
        esac
    done
    # SANET_GIMP_ENV_BINDS passes the bind list into the private namespace (space-separated HOST:CHROOT).
    SANET_GIMP_ENV_BINDS="$binds" exec unshare -m --propagation private sh -eu -c '
        R=$1; shift
        mkdir -p "$R/proc" "$R/dev"
        mount -t proc proc "$R/proc"
        mount --rbind /dev "$R/dev"
        mount -t tmpfs -o mode=1777 shm "$R/dev/shm" 2>/dev/null || true
        mount -t tmpfs -o mode=1777 tmp "$R/tmp"
        for b in $SANET_GIMP_ENV_BINDS; do
            src=${b%%:*}; dst=${b#*:}
            mkdir -p "$R$dst"
            mount --bind "$src" "$R$dst"
        done
        exec chroot "$R" "$@"
    ' sh "$ROOT" "$@"
}

cmd=${1:-build}
[ $# -gt 0 ] && shift
case "$cmd" in
    build) build ;;
    path) echo "$ROOT" ;;
    check) is_ready ;;
    run) run "$@" ;;
    *) say "unknown command: $cmd (build | path | check | run)"; exit 2 ;;
esac
