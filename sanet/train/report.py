"""Pictures of a training run: the preview grid (Pillow) and the loss curves (`sanet train --report RUN_DIR`,
matplotlib when installed), plus the JSON-lines loss log they read. No torch here."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import InputError
from .checkpoint import LOG_FILE, REPORT_FILE, RUN_FILE, atomic_write, read_json

GAP = 4   # pixels between tiles of the preview grid


# --------------------------------------------------------------------------------------------- log

def read_log(run_dir: Path) -> list[dict]:
    """The records of RUN_DIR/log.jsonl (a line cut short by a kill is ignored)."""
    path = Path(run_dir) / LOG_FILE
    out = []
    if not path.is_file():
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "iteration" in rec:
                out.append(rec)
    return out


def truncate_log(run_dir: Path, iteration: int) -> int:
    """Keep the records up to `iteration` (a resumed run rewrites what came after); how many were dropped."""
    records = read_log(run_dir)
    keep = [r for r in records if r["iteration"] <= iteration]
    if (Path(run_dir) / LOG_FILE).exists():
        text = "".join(json.dumps(r) + "\n" for r in keep).encode("utf-8")
        atomic_write(Path(run_dir) / LOG_FILE, lambda f: f.write(text))
    return len(records) - len(keep)


# --------------------------------------------------------------------------------------------- preview

def grid_image(content: np.ndarray, style: np.ndarray, result: np.ndarray) -> np.ndarray:
    """K×3×H×W arrays in [0, 1] (result clipped) → one uint8 RGB image: a row per pair, content | style | result."""
    k, _, h, w = content.shape
    out = np.full((k * h + (k - 1) * GAP, 3 * w + 2 * GAP, 3), 255, np.uint8)
    for i in range(k):
        for j, img in enumerate((content[i], style[i], result[i])):
            tile = (np.clip(img.transpose(1, 2, 0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            y, x = i * (h + GAP), j * (w + GAP)
            out[y:y + h, x:x + w] = tile
    return out


def save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image
    img = Image.fromarray(rgb, "RGB")
    atomic_write(Path(path), lambda f: img.save(f, format="PNG"))


# --------------------------------------------------------------------------------------------- report

class NoMatplotlib(InputError):
    """matplotlib is not installed: str() is the one line; .summary the text report that needs no matplotlib."""

    def __init__(self, message: str, summary: str):
        super().__init__(message)
        self.summary = summary


def _smooth(values: list[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(v) < window:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    head = c[1:window] / np.arange(1, window)
    return np.concatenate([head, (c[window:] - c[:-window]) / window])


def loss_names(records: list[dict]) -> list[str]:
    """"loss" (the weighted total) first, then each term in the order the log gives them."""
    names = []
    for r in records[:1]:
        names = [k for k, v in r.items() if k not in ("iteration", "lr", "seconds") and isinstance(v, (int, float))
                 and not isinstance(v, bool)]
    return sorted(names, key=lambda n: (n != "loss",))


def summary(run_dir: Path, records: list[dict]) -> str:
    """Plain text: per loss its first, last and lowest value (over windows of 1 % of the run)."""
    lines = [f"{run_dir}: {len(records)} iterations logged (last: {records[-1]['iteration']})"]
    window = max(1, len(records) // 100)
    for name in loss_names(records):
        vals = [r[name] for r in records if isinstance(r.get(name), (int, float))]
        sm = _smooth(vals, window)
        lines.append(f"  {name:<17} first {sm[0]:.5g}  last {sm[-1]:.5g}  lowest {np.nanmin(sm):.5g}")
    return "\n".join(lines)


def draw_report(run_dir: Path) -> tuple[Path, str]:
    """Draw RUN_DIR/losses.png (one panel per loss, raw and smoothed, log scale); returns (path, text summary).
    InputError when the folder is not a run or has no losses yet, or when matplotlib is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"--report {run_dir}: no such folder")
    if not (run_dir / RUN_FILE).is_file():
        raise InputError(f"--report {run_dir}: not a training run (no {RUN_FILE}; `sanet train --out` makes one)")
    records = read_log(run_dir)
    if not records:
        raise InputError(f"--report {run_dir}: no losses logged yet ({LOG_FILE} is missing or empty)")
    text = summary(run_dir, records)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise NoMatplotlib(f"drawing the loss curves needs matplotlib, which is not installed here "
                           f"(`pip install matplotlib` in this environment); the losses are in "
                           f"{run_dir / LOG_FILE}, one JSON object per iteration", text) from None
    names = loss_names(records)
    its = np.array([r["iteration"] for r in records])
    cols = 2 if len(names) > 1 else 1
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 3.2 * rows), squeeze=False)
    window = max(1, len(records) // 100)
    model = read_json(run_dir / RUN_FILE).get("model", "")
    for ax, name in zip(axes.flat, names):
        vals = np.array([r.get(name, np.nan) for r in records], dtype=np.float64)
        ax.plot(its, vals, color="#9ab" if window > 1 else "#c33", linewidth=0.6 if window > 1 else 1.4,
                label="per iteration")
        if window > 1:
            ax.plot(its, _smooth(list(vals), window), color="#c33", linewidth=1.4, label=f"mean of {window}")
        if np.all(vals[np.isfinite(vals)] > 0):
            ax.set_yscale("log")
        ax.set_title("weighted total" if name == "loss" else name)
        ax.set_xlabel("iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{model} training losses: {run_dir.name}")
    fig.tight_layout()
    out = run_dir / REPORT_FILE
    atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return out, text
