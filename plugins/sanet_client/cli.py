"""`sanet-client`: stylize files through a running sanetd from scripts.

    sanet-client stylize photo.png --style starry.jpg -o out.png [--selection sel.png] [--alpha 0.8] [--model adaattn]
    sanet-client stylize photo.png --style s.jpg --content-labels photo-map.png --style-labels s-map.png -o out.png
    sanet-client styles add "Starry night" starry.jpg ; sanet-client styles list ; sanet-client hello

Files are read and written exactly as `sanet stylize` does (sanet_client.imagefiles, shared by both commands:
numpy plus OpenCV/tifffile, imported by this command only — the editors never load it): 8-bit content travels
as rgba8, 16-bit as rgba16, float as rgbaf32; the output keeps the input's channels and sample type as the
extension allows (.png, .tif/.tiff, .npy = raw float32 RGB); gray content comes back gray (its luma taken from the
daemon's raw float result, as the engine does). The output path is checked before anything is sent.

Exit codes, as `sanet`: 0 done, 2 bad input (a file, a mask, an option, or a request the daemon refused as such),
1 anything else (no daemon, busy, engine failure, cancelled), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys

from . import imagefiles as F
from . import protocol as P
from .argtypes import add_stylize_controls, check_stylize_args, run_cli
from .client import Client
from .errors import JobFailed, SanetClientError
from .payloads import Labels, Layer, Mask, StylePixels, StyleRef

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2
BAD_INPUT_CODES = ("bad_request", "too_large", "invalid_input", "unknown_style", "model_unavailable")


class CliError(Exception):
    """Bad input found here (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"sanet-client: error: {message}\n")


def read_image(path: str):
    return F.load_image(path, CliError)


def layer_of(arr) -> Layer:
    fmt, rgba = F.to_rgba(arr)
    return Layer(rgba.shape[1], rgba.shape[0], fmt, rgba.tobytes())


def mask_of(arr) -> Mask:
    """A selection or region file as the engine reads it (first channel, scaled to [0, 1], NaN → 0, clamped),
    sent as f32 so that the daemon sees exactly the values `sanet stylize` uses."""
    plane = F.mask_plane(arr, CliError).astype("<f4")
    return Mask(plane.shape[1], plane.shape[0], "f32", plane.tobytes())


def labels_of(arr, path: str, what: str) -> Labels:
    """A label map as the daemon takes it: gray 8/16-bit → integer labels (u8/u16), colour → rgba8."""
    import numpy as np
    a = arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] in (1, 2) else arr
    h, w = a.shape[:2]
    if a.ndim == 2:
        if a.dtype == np.uint8:
            return Labels(w, h, "u8", np.ascontiguousarray(a).tobytes())
        if a.dtype == np.uint16:
            return Labels(w, h, "u16", np.ascontiguousarray(a, dtype="<u2").tobytes())
        raise CliError(f"{path}: {what} is {a.dtype}; integer label maps are 8- or 16-bit gray images")
    if a.dtype != np.uint8:
        raise CliError(f"{path}: {what} is a {a.dtype} colour image; colour-coded label maps are 8-bit")
    fmt, rgba = F.to_rgba(a)
    return Labels(w, h, "rgba8", rgba.tobytes())


def _palette(text: str) -> list[list[int]]:
    out = []
    for entry in text.split(","):
        e = entry.strip().lstrip("#")
        try:
            if len(e) != 6:
                raise ValueError
            out.append([int(e[j:j + 2], 16) for j in (0, 2, 4)])
        except ValueError:
            raise argparse.ArgumentTypeError(f"palette entry {entry!r}: expected #RRGGBB") from None
    return out


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sanet-client", description="Talk to a running sanetd (start it with `sanetd`).",
                epilog="Exit codes: 0 done, 2 bad input, 1 other failures (no daemon, busy, engine error).")
    p.add_argument("--connection", "--connection-file", dest="connection_file", metavar="FILE",
                   help="the daemon's connection file: a shared server's (from `sanetd invite`), or a local daemon's "
                        "(default: $SANETD_CONNECTION_FILE or the runtime dir)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds of daemon silence before retrying")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    s = sub.add_parser("stylize", help="stylize an image file",
                       description="The same options, inputs and output formats as `sanet stylize`, run by sanetd.")
    s.add_argument("content", metavar="IN")
    s.add_argument("--style", action="append", required=True, metavar="S",
                   help="style image file, or id:STYLE_ID from the library (repeat for several)")
    add_stylize_controls(s)
    q = s.add_mutually_exclusive_group()
    q.add_argument("--precision", choices=list(P.PRECISIONS), default=None,
                   help="default: the daemon's (auto: fp32 results, bf16 previews on CPUs with bf16 units)")
    q.add_argument("--quality", choices=list(P.QUALITIES), default=None,
                   help="the plug-ins' choice: exact = precision auto; fast = the daemon's fast precision (bf16 on "
                        "CPUs with AVX-512-BF16 or AMX-BF16, fp16 on GPUs; exact where there is none)")
    s.add_argument("--label-palette", type=_palette, metavar="#RRGGBB,...", help="colours of colour-coded label "
                   "maps (default: their distinct colours)")
    s.add_argument("--progress", action="store_true", help="print progress to stderr")
    s.add_argument("--output", "-o", required=True, metavar="OUT")
    sub.add_parser("hello", help="print the daemon's hello (versions, device, limits, defaults)")
    sub.add_parser("status", help="print the daemon's status")
    st = sub.add_parser("styles", help="the daemon's style library")
    ss = st.add_subparsers(dest="styles_command", required=True, parser_class=_Parser)
    ss.add_parser("list")
    a = ss.add_parser("add")
    a.add_argument("name")
    a.add_argument("file")
    r = ss.add_parser("remove")
    r.add_argument("style_id")
    return p


def _prepare(args):
    """Everything a stylize request needs, checked before anything is sent (bad input → CliError)."""
    kind = F.check_output_path(args.output, CliError)
    check_stylize_args(args, CliError)
    n = len(args.style)
    content = read_image(args.content)
    style_imgs = [None if spec.startswith("id:") else read_image(spec) for spec in args.style]
    regions = [read_image(p) for p in args.region] if args.region else [None] * n
    selection = read_image(args.selection) if args.selection else None
    content_labels = read_image(args.content_labels) if args.content_labels else None
    style_labels = ([None if p.lower() == "none" else read_image(p) for p in args.style_labels]
                    if args.style_labels else [None] * n)
    F.check_input_sizes(content, style_imgs, regions, selection, content_labels, style_labels, CliError)
    content = F.content_for_output(content, kind)
    weights = args.style_weights or [1.0] * n
    styles = []
    for i, spec in enumerate(args.style):
        region = mask_of(regions[i]) if regions[i] is not None else None
        labels = (labels_of(style_labels[i], args.style_labels[i], f"style {i + 1} label map")
                  if style_labels[i] is not None else None)
        if spec.startswith("id:"):
            styles.append(StyleRef(spec[3:], weights[i], region, labels))
        else:
            sl = layer_of(style_imgs[i])
            styles.append(StylePixels(sl.width, sl.height, sl.format, sl.data, weights[i], region, labels))
    return kind, content, styles, selection, content_labels


def _stylize(c: Client, args) -> None:
    import numpy as np
    kind, content, styles, selection, content_labels_img = _prepare(args)
    layer = layer_of(content)
    gray = F.is_gray(content)
    raw = kind == "npy" or gray   # gray: the engine takes the luma of its unclamped float RGB; so do we
    keep = None if selection is None else F.mask_plane(selection, CliError) <= 0.0
    labels = (None if content_labels_img is None
              else labels_of(content_labels_img, args.content_labels, "content label map"))

    def progress(fraction, stage):
        if args.progress:
            print(f"{fraction * 100:5.1f}% {stage}", file=sys.stderr, flush=True)
    precision = args.precision
    if args.quality is not None:
        precision = P.precision_for_quality(args.quality, c.hello()["capabilities"].get("fast_precision"))
    # Ctrl-C leaves the job to the daemon's lease, which cancels it once this process stops pinging
    result = c.stylize(layer, styles, selection=None if selection is None else mask_of(selection),
                       alpha=args.alpha, preserve_color=args.preserve_color, preview=args.preview,
                       style_max_side=args.style_max_side, precision=precision, on_progress=progress,
                       content_labels=labels, label_palette=args.label_palette, scsa_weights=args.scsa_weights,
                       raw=raw, model=args.model, style_keys=args.style_keys)
    h, w = content.shape[:2]
    if raw:
        out = np.frombuffer(result.data, dtype="<f4").reshape(h, w, 3)
        if kind != "npy":
            out = F.gray_from_raw(out, content, keep)
    else:
        dtype = {"rgba8": "<u1", "rgba16": "<u2", "rgbaf32": "<f4"}[result.format]
        out = F.from_rgba(np.frombuffer(result.data, dtype=dtype).reshape(h, w, 4), content, keep)
    F.save_image(args.output, out, CliError)
    print(json.dumps({"output": args.output, "shape": list(out.shape), "dtype": str(out.dtype), **result.info}))


def main(argv=None) -> int:
    return run_cli(_main, argv)   # a closed output pipe ends it quietly


def _main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "stylize":
            # the files and the output path are checked before the daemon is contacted
            with Client(connection_file=args.connection_file, timeout=args.timeout) as c:
                _stylize(c, args)
            return 0
        with Client(connection_file=args.connection_file, timeout=args.timeout) as c:
            if args.command in ("hello", "status"):
                h = getattr(c, args.command)()
                print(json.dumps({k: v for k, v in h.items() if k not in ("msg_id", "reply_to", "time")}, indent=1))
            elif args.styles_command == "list":
                for s in c.styles_list():
                    print(f"{s['id']}  {s['width']}x{s['height']}  {s['name']}")
            elif args.styles_command == "add":
                style = layer_of(read_image(args.file))
                meta = c.styles_add(args.name, StylePixels(style.width, style.height, style.format, style.data))
                print(meta["id"])
            else:
                c.styles_remove(args.style_id)
    except CliError as exc:
        print(f"sanet-client: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except JobFailed as exc:
        print(f"sanet-client: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if exc.code in BAD_INPUT_CODES else EXIT_FAILED
    except SanetClientError as exc:
        print(f"sanet-client: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("sanet-client: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
