"""`sanet weights install SRC` and `sanet weights status`: argparse wiring for the weights manager.

sanet.cli calls add_weights_commands(subparsers) and, for args.command == "weights", run_weights_command(args).
The folder comes from the top-level `--weights DIR` (args.weights); it may also be given after the sub-command.
"""
from __future__ import annotations

import argparse
import json
import sys

from .errors import SanetError
from .weights import (FetchOptions, InstallResult, KNOWN_BLOB_IDS, install, resolve_weights_dir,
                      weights_dir_origin, weights_status)

EXIT_OK, EXIT_NOT_USABLE, EXIT_ERROR = 0, 1, 2

_INSTALL_HELP = """\
SRC is one of:
  an http(s) URL of a folder   the three files under it (and its SHA256SUMS or manifest.json if present)
  an http(s) URL of a manifest SHA256SUMS or *.json; the files are fetched relative to it
  an http(s) URL of one file   vgg_normalised.pth, decoder_iter_500000.pth or transformer_iter_500000.pth
                               (another name: recognised by git blob id or by its layout)
  a local folder, file or manifest, with the same rules
Downloads resume from NAME.part in the weights folder. Nothing lands under the final name before it has
passed the manifest's sha256 (when there is a manifest) and been loaded with its keys and shapes checked;
without a manifest, circulated copies are recognised by git blob id, others are reported as unverified.
"""


def add_weights_commands(subparsers) -> argparse.ArgumentParser:
    """Register `weights install SRC` and `weights status` on an argparse subparsers object."""
    weights = subparsers.add_parser("weights", help="install or check the SANet checkpoint files",
                                    description="Install or check the three SANet checkpoint files.")
    sub = weights.add_subparsers(dest="weights_command", metavar="{install,status}")
    sub.required = True

    inst = sub.add_parser("install", help="download or copy the checkpoints into the weights folder",
                          description=_INSTALL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    inst.add_argument("src", metavar="SRC", help="URL, local file, local folder or manifest")
    inst.add_argument("--retries", type=int, default=3, help="reconnects after a broken download (default 3)")
    inst.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds (default 30)")
    inst.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    _weights_option(inst)

    stat = sub.add_parser("status", help="say which checkpoint files are present, missing or corrupt",
                          description="Exit code 0 when all three files are usable, 1 otherwise, 2 on error.")
    stat.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    _weights_option(stat)
    return weights


def _weights_option(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: when absent here, the top-level --weights value is left as it is.
    parser.add_argument("--weights", metavar="DIR", default=argparse.SUPPRESS,
                        help="weights folder (default: $SANET_WEIGHTS, else the user data dir)")


def run_weights_command(args: argparse.Namespace) -> int:
    """Run `weights install|status`; errors are one line on stderr and exit code 2, never a traceback."""
    explicit = getattr(args, "weights", None)
    try:
        if args.weights_command == "install":
            return _install(args, explicit)
        return _status(args, explicit)
    except SanetError as exc:
        print(f"sanet: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"sanet: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("sanet: interrupted (a partial download is kept and resumes next time)", file=sys.stderr)
        return 130


def _install(args, explicit) -> int:
    target = resolve_weights_dir(explicit)
    if args.retries < 0 or args.timeout <= 0:
        raise SanetError("--retries must be ≥ 0 and --timeout > 0")
    opts = FetchOptions(retries=args.retries, timeout=args.timeout, progress=not args.no_progress)
    print(f"installing into {target} ({weights_dir_origin(explicit)})", file=sys.stderr)

    def report(r: InstallResult) -> None:
        verb = "up to date" if r.skipped else "installed"
        print(f"{r.name}: {verb}, {r.digests.size} bytes, sha256 {r.digests.sha256}: {r.verification}")

    install(args.src, target, opts, on_result=report)
    states = weights_status(target)
    missing = [s.name for s in states if not s.usable]
    if missing:
        print(f"note: still not usable in {target}: {', '.join(missing)} (see `sanet weights status`)",
              file=sys.stderr)
    return EXIT_OK


def _status(args, explicit) -> int:
    folder = resolve_weights_dir(explicit)
    states = weights_status(folder)
    usable = all(s.usable for s in states)
    if args.json:
        print(json.dumps({"folder": str(folder), "origin": weights_dir_origin(explicit), "usable": usable,
                          "files": [s.as_dict() for s in states]}, indent=2))
        return EXIT_OK if usable else EXIT_NOT_USABLE
    print(f"weights folder: {folder} ({weights_dir_origin(explicit)})")
    for s in states:
        if s.state == "missing":
            print(f"  {s.name}: MISSING")
        elif s.state == "corrupt":
            print(f"  {s.name}: CORRUPT: {s.detail}")
        else:
            print(f"  {s.name}: ok, {s.detail}")
        if s.size is not None:
            print(f"      {s.size} bytes  sha256 {s.sha256}")
        if s.partial is not None:
            print(f"      partial download {s.name}.part: {s.partial} bytes (install again to resume)")
    if usable:
        print("all three files usable")
        return EXIT_OK
    bad = sum(not s.usable for s in states)
    print(f"{bad} of {len(states)} files not usable: run `sanet weights install SRC` "
          f"(circulated copies are recognised by git blob id: {len(KNOWN_BLOB_IDS)} known)")
    return EXIT_NOT_USABLE
