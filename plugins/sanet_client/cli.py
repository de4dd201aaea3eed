"""`sanet-client`: stylize files through a running sanetd from scripts.

    sanet-client stylize photo.png --style starry.jpg -o out.png [--selection sel.png] [--alpha 0.8]
    sanet-client stylize photo.png --style s.jpg --content-labels photo-map.png --style-labels s-map.png -o out.png
    sanet-client styles add "Starry night" starry.jpg ; sanet-client styles list ; sanet-client hello

Image files are read and written with Pillow, imported here only (the editors' code path never needs it);
images travel as 8-bit RGBA, masks as 8-bit gray. A style may be a file or ``id:STYLE_ID`` from the library.
SCSA label maps: a gray file is integer labels (8-bit: u8, 16-bit: u16), anything else a colour-coded map (rgba8).
"""
from __future__ import annotations

import argparse
import json
import sys

from .argtypes import add_stylize_controls
from .client import Client
from .errors import SanetClientError
from .payloads import Labels, Layer, Mask, StylePixels, StyleRef


class CliError(Exception):
    pass


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise CliError("reading and writing image files needs Pillow (pip install pillow)") from None
    return Image


def read_rgba(path: str):
    Image = _pil()
    try:
        with Image.open(path) as img:
            img = img.convert("RGBA")
            return img.width, img.height, img.tobytes()
    except FileNotFoundError:
        raise CliError(f"{path}: file not found") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read image ({exc})") from None


def read_mask(path: str, width: int, height: int, what: str) -> Mask:
    Image = _pil()
    try:
        with Image.open(path) as img:
            if img.mode in ("RGBA", "LA", "PA"):
                img = img.getchannel("A")   # a mask saved with transparency: opacity is the selection
            img = img.convert("L")
            if img.size != (width, height):
                raise CliError(f"{path}: {what} is {img.width}x{img.height}; it must match the layer, "
                               f"{width}x{height}")
            return Mask(width, height, "u8", img.tobytes())
    except FileNotFoundError:
        raise CliError(f"{path}: file not found") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read mask ({exc})") from None


def read_labels(path: str, what: str) -> Labels:
    """A label map file as the daemon takes it: gray 8/16-bit → integer labels (u8/u16), else colours (rgba8)."""
    Image = _pil()
    try:
        with Image.open(path) as img:
            if img.mode in ("1", "L"):
                return Labels(img.width, img.height, "u8", img.convert("L").tobytes())
            if img.mode.startswith("I"):      # 16-bit gray PNG ("I;16", or "I" with values 0..65535)
                lo, hi = img.getextrema() if img.mode == "I" else (0, 0)
                if lo < 0 or hi > 65535:
                    raise CliError(f"{path}: {what} has labels {lo}..{hi}; integer labels must be 0..65535")
                img16 = img if img.mode == "I;16" else img.convert("I;16")
                return Labels(img.width, img.height, "u16", img16.tobytes("raw", "I;16"))
            return Labels(img.width, img.height, "rgba8", img.convert("RGBA").tobytes())
    except FileNotFoundError:
        raise CliError(f"{path}: file not found") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read {what} ({exc})") from None


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


def write_rgba(path: str, width: int, height: int, data: bytes) -> None:
    Image = _pil()
    img = Image.frombytes("RGBA", (width, height), data)
    if path.lower().endswith((".jpg", ".jpeg")):
        img = img.convert("RGB")
    try:
        img.save(path)
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: cannot write image ({exc})") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sanet-client", description="Talk to a running sanetd (start it with `sanetd`).")
    p.add_argument("--connection-file", metavar="FILE", help="default: $SANETD_CONNECTION_FILE or the runtime dir")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds of daemon silence before retrying")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("stylize", help="stylize an image file")
    s.add_argument("content", metavar="IN")
    s.add_argument("--style", action="append", required=True, metavar="S",
                   help="style image file, or id:STYLE_ID from the library (repeat for several)")
    add_stylize_controls(s)
    s.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default=None)
    s.add_argument("--label-palette", type=_palette, metavar="#RRGGBB,...", help="colours of colour-coded label "
                   "maps (default: their distinct colours)")
    s.add_argument("--progress", action="store_true", help="print progress to stderr")
    s.add_argument("--output", "-o", required=True, metavar="OUT")
    sub.add_parser("hello", help="print the daemon's hello (versions, device, limits)")
    sub.add_parser("status", help="print the daemon's status")
    st = sub.add_parser("styles", help="the daemon's style library")
    ss = st.add_subparsers(dest="styles_command", required=True)
    ss.add_parser("list")
    a = ss.add_parser("add")
    a.add_argument("name")
    a.add_argument("file")
    r = ss.add_parser("remove")
    r.add_argument("style_id")
    return p


def _stylize(c: Client, args) -> None:
    w, h, data = read_rgba(args.content)
    layer = Layer(w, h, "rgba8", data)
    n = len(args.style)
    weights = args.style_weights or [1.0] * n
    if len(weights) != n:
        raise CliError(f"--style-weights has {len(weights)} value(s) for {n} style(s)")
    regions = args.region or []
    if regions and len(regions) != n:
        raise CliError(f"--region was given {len(regions)} time(s) for {n} style(s); give one per style")
    style_labels = args.style_labels or []
    if style_labels and len(style_labels) != n:
        raise CliError(f"--style-labels was given {len(style_labels)} time(s) for {n} style(s); give one label map "
                       f"per style ('none' for a style without one)")
    if bool(args.content_labels) != any(p.lower() != "none" for p in style_labels):
        raise CliError("SCSA needs both --content-labels and --style-labels (a label map for at least one style)")
    if args.scsa_weights is not None and len(args.scsa_weights) != 2:
        raise CliError(f"--scsa-weights has {len(args.scsa_weights)} value(s); expected two (T1,T2)")
    styles = []
    for i, spec in enumerate(args.style):
        region = read_mask(regions[i], w, h, f"region {i + 1}") if regions else None
        labels = (read_labels(style_labels[i], f"style {i + 1} label map")
                  if style_labels and style_labels[i].lower() != "none" else None)
        if spec.startswith("id:"):
            styles.append(StyleRef(spec[3:], weights[i], region, labels))
        else:
            sw, sh, sdata = read_rgba(spec)
            if labels is not None and (labels.width, labels.height) != (sw, sh):
                raise CliError(f"{style_labels[i]}: style {i + 1} label map is {labels.width}x{labels.height}; it "
                               f"must match the style image {spec}, {sw}x{sh}")
            styles.append(StylePixels(sw, sh, "rgba8", sdata, weights[i], region, labels))
    selection = read_mask(args.selection, w, h, "selection") if args.selection else None
    content_labels = read_labels(args.content_labels, "content label map") if args.content_labels else None
    if content_labels is not None and (content_labels.width, content_labels.height) != (w, h):
        raise CliError(f"{args.content_labels}: content label map is {content_labels.width}x{content_labels.height};"
                       f" it must match the layer, {w}x{h}")

    def progress(fraction, stage):
        if args.progress:
            print(f"{fraction * 100:5.1f}% {stage}", file=sys.stderr, flush=True)
    # Ctrl-C leaves the job to the daemon's lease, which cancels it once this process stops pinging
    result = c.stylize(layer, styles, selection=selection, alpha=args.alpha, preserve_color=args.preserve_color,
                       preview=args.preview, style_max_side=args.style_max_side, precision=args.precision,
                       on_progress=progress, content_labels=content_labels, label_palette=args.label_palette,
                       scsa_weights=args.scsa_weights)
    write_rgba(args.output, result.width, result.height, result.data)
    print(json.dumps({"output": args.output, **result.info}))


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        with Client(connection_file=args.connection_file, timeout=args.timeout) as c:
            if args.command == "stylize":
                _stylize(c, args)
            elif args.command in ("hello", "status"):
                h = getattr(c, args.command)()
                print(json.dumps({k: v for k, v in h.items() if k not in ("msg_id", "reply_to", "time")}, indent=1))
            elif args.styles_command == "list":
                for s in c.styles_list():
                    print(f"{s['id']}  {s['width']}x{s['height']}  {s['name']}")
            elif args.styles_command == "add":
                w, h, data = read_rgba(args.file)
                meta = c.styles_add(args.name, StylePixels(w, h, "rgba8", data))
                print(meta["id"])
            else:
                c.styles_remove(args.style_id)
    except (CliError, SanetClientError) as exc:
        print(f"sanet-client: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sanet-client: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
