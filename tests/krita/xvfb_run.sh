#!/bin/sh
# xvfb_run.sh SCREEN CMD ARGS...: run CMD on a private Xvfb display that Xvfb picks itself (-displayfd), as the
# GIMP runner does. `xvfb-run -a` guesses a free display from lock files and races with an Xvfb that is still
# shutting down (seen: "could not connect to display :99" right after another Krita test).
screen=$1; shift
tmp=$(mktemp -d)
Xvfb -displayfd 5 -screen 0 "$screen" -nolisten tcp 5>"$tmp/display" 2>"$tmp/xvfb.log" &
xv=$!
i=0
while [ ! -s "$tmp/display" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -s "$tmp/display" ]; then
    echo "xvfb_run: Xvfb did not start:" >&2; cat "$tmp/xvfb.log" >&2; kill $xv 2>/dev/null; rm -rf "$tmp"; exit 3
fi
DISPLAY=:$(cat "$tmp/display")
export DISPLAY
"$@"
rc=$?
kill $xv 2>/dev/null
wait $xv 2>/dev/null
rm -rf "$tmp"
exit $rc
