"""What a model is, for the runtime: data (checkpoint files, encoder levels, feature maps, decoder inputs, memory
costs) plus pure functions (content features, style memory, per-level transform + merge, decoder).

The runtime (sanet.runtime) owns everything else: planning, tiles with exact global statistics, the α / style-weight
/ region mix, caching, precision, out-of-memory fallback, progress and cancellation. A model never sees a tile
boundary: it gets the feature maps of a region plus whole-image statistics (`Context.stats`) and must give, at every
position, what the whole-image computation gives — i.e. everything except convolutions is pointwise given `stats`.

Flow of one stylization (names are this interface's):

    enc    = sanet.vgg.encode(encoder, image, model.levels)          runtime, per tile with halos
    feats  = model.features(enc[, label_enc])                        name → map at model.feature_factors[name]
    stats  = whole-image mean/std of every map in feats (+ per-label count/mean/var of model.region_stats, SCSA)
    memory = model.style_memory(nets, style_feats, style_stats, ...)  once per style (cached by the runtime)
    outs   = model.transform(nets, feats, ctx, memories)             one dict per memory: decoder input → map
    mixed  = α · Σ_k c_k · outs[k] + rest · outs[own]                runtime (sanet.runtime.controls), per input
    image  = model.decode(nets, mixed)
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


STYLE_KEYS = ("sampled", "all")   # style_memory(style_keys=): a model's own key subsampling (if any), or every key


@dataclass(frozen=True)
class Costs:
    """Memory per image pixel in fp32 (the planner scales by the element size); measured, see sanet.runtime.planner."""
    work_bytes_per_px: int        # encoder / decoder peak of one tile
    untiled_extra_per_px: int     # whole-image run only: content maps, transformed features, the mix
    feature_bytes_per_px: int     # the content feature maps kept between the two passes of a tiled run


@dataclass
class Context:
    """What a model's transform reads besides the feature maps of its region (built by the runtime).

    stats.mean_std(name) -> (mean, std), 1×C×1×1 in the run's dtype: the WHOLE image's statistics of feature `name`
        (unbiased variance, eps inside the square root), so a tile normalises exactly like the whole image.
    stats.regions(name) -> (labels L, counts L, means L×C, biased variances L×C), float64: per-label statistics over
        the whole image of the maps in model.region_stats (SCSA only).
    labels: content label ids of this region per feature factor (h×w LongTensor), or None without label maps.
    chunk:  attention queries per fused call (planner), None for all at once.
    memo:   per-call scratch for quantities derived once per style (e.g. SCSA's whole-image statistics of F_c').
    scsa_weights: (t1, t2) of SCSA's continuous and sparse parts (labelled styles only).
    """
    stats: Any
    labels: dict[int, torch.Tensor] | None = None
    chunk: int | None = None
    memo: dict = field(default_factory=dict)
    scsa_weights: tuple[float, float] | None = None


class Model:
    """Base class: class attributes are the model's data, methods its functions (no state between calls)."""
    name: str = ""
    title: str = ""
    files: dict[str, str] = {}             # role → checkpoint file in the weights folder (the shared VGG aside)
    levels: tuple[int, ...] = ()           # relu{L}_1 levels of the encoder the model reads
    feature_factors: dict[str, int] = {}   # content feature maps: name → image pixels per cell
    decoder_inputs: dict[str, int] = {}    # what the decoder takes (each gets the runtime's mix): name → px per cell
    region_stats: tuple[str, ...] = ()     # feature maps whose per-label statistics SCSA needs
    label_image: bool = False              # SCSA: the label-map IMAGE is encoded too (its features join `feats`)
    scsa_weights: tuple[float, float] = (0.7, 0.3)   # default (t1, t2) of the SCSA variant
    costs: Costs = Costs(640, 160, 40)
    base: str = ""                         # variants only: the model whose fine-tuned files they are (sanet.variants)

    def variant(self, name: str) -> "Model":
        """This model with its networks read from the variant's folder (WEIGHTS/variants/<model>/<name>/, the same
        file names and layout): the same data and functions, another name (MODEL:NAME) and other files."""
        from .. import variants
        v = copy.copy(self)
        v.name = variants.join(self.name, name)
        v.title = f"{self.title} — {name}"
        v.base = self.name
        v.files = {role: variants.relative_file(self.name, name, f) for role, f in self.files.items()}
        return v

    # ---------------------------------------------------------------- data
    def build(self) -> dict[str, nn.Module]:
        """role → nn.Module in its checkpoint layout (state_dict keys and shapes equal the file's)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- functions
    def features(self, enc: dict[int, torch.Tensor], label_enc: dict[int, torch.Tensor] | None = None
                 ) -> dict[str, torch.Tensor]:
        """Encoder levels of an image (and of its label-map image) → the feature maps the transform reads."""
        raise NotImplementedError

    def style_memory(self, nets: dict[str, nn.Module], feats: dict[str, torch.Tensor], stats,
                     labels: dict[int, torch.Tensor] | None = None, style_keys: str = "sampled"):
        """A style's attention memory (keys/values per level) from its feature maps and their own statistics;
        labels (style label ids per factor) make it an SCSA memory."""
        raise NotImplementedError

    def transform(self, nets: dict[str, nn.Module], feats: dict[str, torch.Tensor], ctx: Context,
                  memories: list) -> list[dict[str, torch.Tensor]]:
        """T(c, s) for each memory: decoder inputs (name → map on the region's grid at decoder_inputs[name])."""
        raise NotImplementedError

    def decode(self, nets: dict[str, nn.Module], inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mixed decoder inputs → image (1×3×H×W, unclamped)."""
        raise NotImplementedError

    def score_positions(self, memory) -> int:
        """Key positions per relu4_1 query (planner: bound on a materialised score matrix)."""
        raise NotImplementedError

    def check_scsa_weights(self, t1: float, t2: float) -> str | None:
        """Why (t1, t2) cannot be used with this model's SCSA variant, or None."""
        return None


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)
