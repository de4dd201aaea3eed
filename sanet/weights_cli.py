"""`sanet weights install|sources|status`: argparse wiring for the weights manager.

sanet.cli calls add_weights_commands(subparsers) and, for args.command == "weights", run_weights_command(args).
The folder comes from the top-level `--weights DIR` (args.weights); it may also be given after the sub-command.
Nothing here imports torch until a checkpoint has to be loaded to be checked (`sources` never does).
"""
from __future__ import annotations

import argparse
import json
import sys

from .errors import SanetError
from . import weights as W

EXIT_OK, EXIT_NOT_USABLE, EXIT_ERROR = 0, 1, 2

_INSTALL_HELP = """\
Without SRC: the known public sources of each model (`sanet weights sources`) are tried in order until one
works, and each model's outcome is one line (installed / already usable / failed, why, and the command that
retries it). Exit code 0 when a model is usable afterwards (a model that failed is said, with how to retry);
2 when none is, or when the model named with --model could not be installed. With SRC (or --from SRC), one of:
  an http(s) URL of a folder   the model's files under it (and its SHA256SUMS or manifest.json if present)
  an http(s) URL of a manifest SHA256SUMS or *.json; the files are fetched relative to it
  an http(s) URL of one file   e.g. vgg_normalised.pth (another name: recognised by git blob id or by its layout)
  an http(s) URL of a .zip     e.g. AdaAttN_model.zip: its checkpoint files are installed flat
  a local folder, file, .zip or manifest, with the same rules (a release's nested layout is fine)
  a `sanet train` run folder   its latest checkpoint becomes the model variant MODEL:NAME (--name, default the
                               run's name; --iteration N for another checkpoint, or give RUN_DIR/decoder_iter_N.pth)
Downloads resume from NAME.part in the weights folder. Nothing lands under the final name before it has
passed the manifest's sha256 (when there is a manifest) and been loaded with its keys and shapes checked;
without a manifest, circulated copies are recognised by git blob id, others are reported as unverified.
"""


def add_weights_commands(subparsers) -> argparse.ArgumentParser:
    """Register `weights install [SRC]`, `weights sources` and `weights status` on an argparse subparsers object."""
    weights = subparsers.add_parser("weights", help="get, list the sources of, or check the checkpoint files",
                                    description="Get, list the sources of, or check the checkpoint files of "
                                                f"each model ({', '.join(W.MODELS)}).")
    sub = weights.add_subparsers(dest="weights_command", metavar="{install,sources,status,remove}")
    sub.required = True

    inst = sub.add_parser("install", help="download or copy the checkpoints into the weights folder",
                          description=_INSTALL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    inst.add_argument("src", metavar="SRC", nargs="?", help="URL, local file, folder, .zip or manifest "
                      "(default: the known sources)")
    inst.add_argument("--from", dest="from_", metavar="SRC", help="the same as SRC")
    _model_option(inst, "the model whose files to install (default: every model; with SRC: the files it holds)")
    inst.add_argument("--name", help="training runs: the variant's name (default: the run's)")
    inst.add_argument("--iteration", type=int, help="training runs: which checkpoint (default: the latest)")
    inst.add_argument("--retries", type=int, default=3, help="reconnects after a broken download (default 3)")
    inst.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds (default 30)")
    inst.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    _weights_option(inst)

    src = sub.add_parser("sources", help="list the known public sources of each model's files",
                         description="Where each model's checkpoint files are published, what each source holds "
                                     "and how its files are verified (SANET_WEIGHTS_SOURCES=FILE: another list).")
    _model_option(src, "only this model")
    src.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    _weights_option(src)

    stat = sub.add_parser("status", help="say which checkpoint files are present, missing or corrupt",
                          description="Exit code 0 when every model asked for is usable (default: every model with "
                                      "a file of its own present, SANet when none is), 1 otherwise, 2 on error.")
    _model_option(stat, "only this model")
    stat.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    _weights_option(stat)

    rem = sub.add_parser("remove", help="remove an installed model variant (MODEL:NAME)",
                         description="Remove a model variant installed from a training run (`sanet weights install "
                                     "RUN_DIR`); the released weights are never removed by this command.")
    rem.add_argument("variant", metavar="MODEL:NAME")
    _weights_option(rem)
    return weights


def _model_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--model", choices=list(W.MODELS), default=None, help=text)


def _weights_option(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: when absent here, the top-level --weights value is left as it is.
    parser.add_argument("--weights", metavar="DIR", default=argparse.SUPPRESS,
                        help="weights folder (default: $SANET_WEIGHTS, else the user data dir)")


def run_weights_command(args: argparse.Namespace) -> int:
    """Run `weights install|sources|status`; errors are one line on stderr and exit code 2, never a traceback."""
    explicit = getattr(args, "weights", None)
    try:
        if args.weights_command == "install":
            return _install(args, explicit)
        if args.weights_command == "sources":
            return _sources(args)
        if args.weights_command == "remove":
            from . import weights_variants as V
            V.remove(W.resolve_weights_dir(explicit), args.variant)
            return EXIT_OK
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


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _report(r: W.InstallResult) -> None:
    verb = "up to date" if r.skipped else "installed"
    print(f"{r.name}: {verb}, {r.digests.size} bytes, sha256 {r.digests.sha256}: {r.verification}", flush=True)


def _install(args, explicit) -> int:
    target = W.resolve_weights_dir(explicit)
    if args.retries < 0 or args.timeout <= 0:
        raise SanetError("--retries must be ≥ 0 and --timeout > 0")
    if args.src and args.from_ and args.src != args.from_:
        raise SanetError(f"give the source once: SRC {args.src!r} and --from {args.from_!r} differ")
    src = args.src or args.from_
    from . import weights_variants as V
    run = V.training_run_of(src) if src and not W.is_url(src) else None
    if run is not None:
        if args.model and args.model != V.ck.read_json(run[0] / V.ck.RUN_FILE).get("model"):
            raise SanetError(f"{run[0]}: this training run is not of --model {args.model}")
        if args.iteration is not None and run[1] is not None and args.iteration != run[1]:
            raise SanetError(f"give the iteration once: {src} is iteration {run[1]}, --iteration says "
                             f"{args.iteration}")
        _err(f"installing into {target} ({W.weights_dir_origin(explicit)})")
        V.install_run(run[0], target, run[1] if run[1] is not None else args.iteration, args.name)
        return EXIT_OK
    if args.name or args.iteration is not None:
        raise SanetError("--name and --iteration are for training runs (`sanet weights install RUN_DIR`)")
    opts = W.FetchOptions(retries=args.retries, timeout=args.timeout, progress=not args.no_progress)
    _err(f"installing into {target} ({W.weights_dir_origin(explicit)})")
    if src:
        W.install(src, target, opts, on_result=_report, model=args.model)
        models = [args.model] if args.model else _models_to_check(target)
        for m in models:
            missing = [s.name for s in W.weights_status(target, m) if not s.usable]
            if missing:
                _err(f"note: {W.MODEL_TITLES[m]} is still not usable in {target}: {', '.join(missing)} "
                     f"(see `sanet weights status`)")
        return EXIT_OK
    return install_from_known(target, [args.model] if args.model else None, opts)


def install_from_known(target, models, opts) -> int:
    """The known sources, in order, for each model; then one line per model (installed / already present / failed
    and why, with the command that retries it). Exit 0 when something usable results — every model was tried
    (no --model) and SANet, the default, or another model can run; 2 when nothing usable results, or when a model
    the user named (--model) could not be installed. A failed model also gets the exact names and folder to put its
    files in by hand."""
    from . import weights_sources as S
    sources = S.known_sources()
    _err("known sources (details: `sanet weights sources`):")
    for m in models or list(W.MODELS):
        names = [s.name for s in sources if s.model == m]
        _err(f"  {m}: " + ("; ".join(f"{i}. {n}" for i, n in enumerate(names, 1)) if names else "none"))
    outcomes = S.install_known(target, models, opts, report=_report, say=_err)
    failed = [o for o in outcomes if not o.usable]
    for o in outcomes:
        if o.already:
            print(f"{o.model}: all files already usable in {target}", flush=True)
        elif o.usable:
            print(f"{o.model}: installed from {o.source}", flush=True)
        else:
            why = o.failures[-1][1] if o.failures else "no known source"
            print(f"{o.model}: failed ({len(o.failures)} source(s) tried; the last said: {why}); retry with "
                  f"`sanet weights install --model {o.model}`", flush=True)
    if not failed:
        return EXIT_OK
    for o in failed:
        _err(W.where_to_put(target, o.model))
    usable = [o.model for o in outcomes if o.usable]
    if models or not usable:     # the model the user named, or nothing at all
        for o in failed:
            _err(f"sanet: error: no known source could provide {W.MODEL_TITLES[o.model]} "
                 f"({len(o.failures)} tried, each said why above)")
        return EXIT_ERROR
    default = W.DEFAULT_MODEL in usable
    _err(f"sanet: {', '.join(W.MODEL_TITLES[m] for m in usable)} usable in {target}; "
         f"{', '.join(W.MODEL_TITLES[o.model] for o in failed)} could not be installed (see above; retry with "
         + " / ".join(f"`sanet weights install --model {o.model}`" for o in failed) + ")"
         + ("" if default else f"; `sanet stylize` needs --model {usable[0]} until {W.DEFAULT_MODEL} is installed"))
    return EXIT_OK


def _sources(args) -> int:
    from . import weights_sources as S
    if args.json:
        print(json.dumps({"file": str(S.catalogue_path()),
                          "sources": [{"model": s.model, **s.spec} for s in S.known_sources(args.model)]}, indent=2))
    else:
        print(S.describe(args.model))
    return EXIT_OK


def _has_own_files(folder, model: str) -> bool:
    own = [n for n in W.MODELS[model] if W.models_of(n) == [model]]
    return any((folder / n).exists() or (folder / (n + W.PART_SUFFIX)).exists() for n in own)


def _models_to_check(folder) -> list[str]:
    """Every model with a file of its own present (a half-installed model needs attention); SANet when none is."""
    return [m for m in W.MODELS if _has_own_files(folder, m)] or [W.DEFAULT_MODEL]


def _status(args, explicit) -> int:
    folder = W.resolve_weights_dir(explicit)
    states = W.models_status(folder)
    checked = [args.model] if args.model else _models_to_check(folder)
    usable = all(W.model_usable(states[m]) for m in checked)
    alt = W.alt_vgg_status(folder)
    from . import weights_variants as V
    variant_states = V.status(folder)
    if args.json:
        models = {m: {"title": W.MODEL_TITLES[m], "usable": W.model_usable(st),
                      "files": [s.as_dict() for s in st]} for m, st in states.items()}
        print(json.dumps({"folder": str(folder), "origin": W.weights_dir_origin(explicit), "usable": usable,
                          "checked": checked, "models": models, "alt_vgg": alt.as_dict() if alt else None,
                          "variants": variant_states},
                         indent=2))
        return EXIT_OK if usable else EXIT_NOT_USABLE
    print(f"weights folder: {folder} ({W.weights_dir_origin(explicit)})")
    shown: dict[str, str] = {}
    for m, st in states.items():
        if args.model and m != args.model:
            continue
        state = "usable" if W.model_usable(st) else "NOT USABLE" if _has_own_files(folder, m) else "not installed"
        print(f"{W.MODEL_TITLES[m]} [{m}]: {state}")
        for s in st:
            if s.name in shown:   # a shared file: said once
                print(f"  {s.name}: {'ok' if s.usable else s.state.upper()} (shared with {shown[s.name]}, above)")
                continue
            shown[s.name] = m
            shared = [o for o in W.models_of(s.name) if o != m]
            tail = f" (shared with {', '.join(shared)})" if shared else ""
            if s.state == "missing":
                print(f"  {s.name}: MISSING{tail}")
            elif s.state == "corrupt":
                print(f"  {s.name}: CORRUPT: {s.detail}")
            else:
                print(f"  {s.name}: ok, {s.detail}{tail}")
            if s.size is not None:
                print(f"      {s.size} bytes  sha256 {s.sha256}")
            if s.partial is not None:
                print(f"      partial download {s.name}.part: {s.partial} bytes (install again to resume)")
    if alt is not None and args.model in (None, "adaattn"):
        print(f"  {alt.name}: {'ok, ' if alt.usable else 'CORRUPT: '}{alt.detail}")
    for v in variant_states:
        if args.model and v["model"] != args.model:
            continue
        origin = f", iteration {v['iteration']} of {v['source']}" if "source" in v else ""
        print(f"variant {v['id']}: {'usable' if v['usable'] else 'NOT USABLE'}{origin}")
        for f in v["files"]:
            if not f["usable"]:
                print(f"  {f['name']}: {f['state'].upper()}: {f['detail']}")
    if usable:
        print(f"usable: {', '.join(checked)}")
        return EXIT_OK
    for m in checked:
        if not W.model_usable(states[m]):
            print(f"{m}: not usable: run `sanet weights install` (tries the known sources; `sanet weights sources` "
                  f"lists them), or")
            print("  " + W.where_to_put(folder, m).replace("\n", "\n  "))
    return EXIT_NOT_USABLE
