"""`sanet demo`: from nothing to a stylized image, or to one clear thing to do.

1. writes an example content image (a landscape) and style image (swirling brush strokes) into DIR; they are
   generated, so the repository ships no binary images and nothing is downloaded for them;
2. checks the SANet weights; when they are missing, tries the known public sources (`sanet weights sources`);
   when none can be reached, says exactly which files to put in which folder, and stops (exit code 2);
3. runs `sanet stylize DIR/content.png --style DIR/style.png -o DIR/stylized.png` and says where the result is.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import weights as W
from .images import save_image

CONTENT_SIZE = (384, 512)   # height, width
STYLE_SIZE = (320, 320)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Value noise in [0, 1]: a coarse random grid, bilinearly upsampled."""
    h, w = shape
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.random((gh, gw))
    y = np.linspace(0, gh - 1.001, h)
    x = np.linspace(0, gw - 1.001, w)
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    g = grid
    top = g[y0][:, x0] * (1 - fx) + g[y0][:, x0 + 1] * fx
    bottom = g[y0 + 1][:, x0] * (1 - fx) + g[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def example_content(seed: int = 7) -> np.ndarray:
    """A landscape: sky gradient, sun, two mountain ridges, a lake with a reflection, a meadow. uint8 RGB."""
    rng = np.random.default_rng(seed)
    h, w = CONTENT_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = yy / h
    img = np.zeros((h, w, 3), np.float32)
    img[:] = (np.array([0.35, 0.55, 0.85]) * (1 - t[..., None]) + np.array([0.95, 0.80, 0.65]) * t[..., None])
    sun = np.exp(-(((xx - 0.72 * w) ** 2 + (yy - 0.22 * h) ** 2) / (2 * (0.05 * w) ** 2)))
    img += sun[..., None] * np.array([1.0, 0.85, 0.5]) * 0.9
    x = np.arange(w, dtype=np.float32)
    ridge_far = 0.45 * h + 0.06 * h * np.sin(x / w * 7.0 + 1.0) + 0.03 * h * np.sin(x / w * 19.0)
    ridge_near = 0.58 * h + 0.08 * h * np.sin(x / w * 4.0 + 2.5) + 0.02 * h * np.sin(x / w * 31.0)
    far = yy > ridge_far[None, :]
    near = yy > ridge_near[None, :]
    img[far] = img[far] * 0.3 + np.array([0.30, 0.38, 0.55]) * 0.7
    img[near] = np.array([0.18, 0.35, 0.22]) * (0.8 + 0.4 * _smooth_noise(rng, (h, w), 16)[near][:, None])
    meadow = yy > 0.8 * h + 0.02 * h * np.sin(xx / w * 9.0)
    img[meadow] = np.array([0.35, 0.55, 0.2]) * (0.7 + 0.5 * _smooth_noise(rng, (h, w), 6)[meadow][:, None])
    lake_top = 0.78 * h
    lake = (((xx - 0.38 * w) / (0.36 * w)) ** 2 + ((yy - h) / (0.22 * h)) ** 2 < 1) & (yy >= lake_top)
    ripple = 2.5 * np.sin(yy * 0.9 + np.sin(xx * 0.05) * 2)
    mirror = np.clip((2 * lake_top - yy + ripple).astype(int), 0, h - 1)
    reflected = img[mirror, xx.astype(int)]
    img[lake] = reflected[lake] * 0.55 + np.array([0.25, 0.4, 0.6]) * 0.45
    img *= (0.92 + 0.08 * _smooth_noise(rng, (h, w), 48))[..., None]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def example_style(seed: int = 11) -> np.ndarray:
    """Swirling brush strokes in blues and yellows (a vortex field with stroke texture). uint8 RGB."""
    rng = np.random.default_rng(seed)
    h, w = STYLE_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = 0.55 * w, 0.45 * h
    r = np.hypot(xx - cx, yy - cy) / w
    a = np.arctan2(yy - cy, xx - cx)
    warp = _smooth_noise(rng, (h, w), 24) * 3.0
    phase = a * 3 + r * 28 + warp
    bands = 0.5 + 0.5 * np.sin(phase)
    strokes = 0.5 + 0.5 * np.sin(phase * 9 + _smooth_noise(rng, (h, w), 5) * 6)
    deep = np.array([0.08, 0.15, 0.45])
    mid = np.array([0.25, 0.45, 0.80])
    gold = np.array([0.98, 0.85, 0.30])
    img = deep * (1 - bands[..., None]) + mid * bands[..., None]
    glow = np.clip((bands * strokes - 0.55) * 3, 0, 1)
    img = img * (1 - glow[..., None]) + gold * glow[..., None]
    img *= (0.8 + 0.35 * strokes)[..., None]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_demo(args, sanet_main) -> int:
    out = Path(args.out).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _say(f"sanet: error: {out}: cannot create the demo folder ({exc.strerror})")
        return 2
    content, style, result = out / "content.png", out / "style.png", out / "stylized.png"
    save_image(content, example_content())
    save_image(style, example_style())
    _say(f"demo: wrote the example images {content} and {style}")

    folder = W.resolve_weights_dir(args.weights)
    if not W.model_usable(W.weights_status(folder)):
        _say(f"demo: the SANet weights are not installed in {folder} ({W.weights_dir_origin(args.weights)})")
        if args.no_download:
            _say(W.where_to_put(folder))
            _say("then run this command again.")
            return 2
        from .weights_cli import install_from_known
        if install_from_known(folder, [W.DEFAULT_MODEL], W.FetchOptions()) != 0:
            _say("then run this command again.")
            return 2

    argv = ["stylize", str(content), "--style", str(style), "-o", str(result), "--device", args.device]
    if args.weights:
        argv += ["--weights", str(args.weights)]
    _say("demo: $ sanet " + " ".join(argv))
    code = sanet_main(argv)   # sanet.cli.main, passed in: demo never imports the CLI back
    if code == 0:
        print(f"demo: done. Open {result} (stylized {content} with {style}); now try your own: "
              f"sanet stylize PHOTO --style PAINTING -o OUT.png")
    return code
