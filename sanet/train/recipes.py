"""What training each model means, as data (no torch: `sanet train --help` shows these defaults without loading it).

The defaults are the released training code's (facts: sanet-reference.md "Training", scsa-adaattn.md §2):

SANet (the circulated reproduction, whose checkpoints users hold): Adam lr 1e-4 decayed as lr / (1 + 5e-5 · i),
    batch 5, 160 000 iterations, images resized to 512×512 then randomly cropped to 256, no flip; loss
    1 · content + 3 · style + 50 · identity on pixels + 1 · identity on features (the paper's text gives the
    opposite identity weights, 1 on pixels and 50 on features). Trains transformer + decoder.
AdaAttN (the authors' release): Adam lr 2e-4, batch 8, 512×512 → random 256 crop + horizontal flip; loss
    10 · global + 3 · local + 0 · content; 2 epochs at the full rate then 3 epochs each at 0.3× the previous one.
    Here the schedule is in fractions of --iterations: the first 2/5 at the full rate, then ×0.3 at each further
    fifth (the release's schedule when --iterations is 5 epochs of the data, its default). Trains transformer,
    decoder and adaattn_3.
The VGG encoder is always frozen.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    model: str
    lr: float
    batch: int
    iterations: int | None          # None: 5 epochs of the data (AdaAttN's release)
    size: int
    crop: int
    flip: bool
    weights: dict[str, float]       # loss term → weight
    schedule: str                   # "inverse" (lr / (1 + decay·i)) or "fifths" (AdaAttN's epochs as fifths)
    lr_decay: float = 0.0
    roles: tuple[str, ...] = ()     # the model's trainable networks (checkpoint roles)
    weight_flags: dict[str, str] = field(default_factory=dict)   # loss term → command-line flag


RECIPES = {
    "sanet": Recipe(
        model="sanet", lr=1e-4, batch=5, iterations=160_000, size=512, crop=256, flip=False,
        weights={"content": 1.0, "style": 3.0, "identity_pixel": 50.0, "identity_feature": 1.0},
        schedule="inverse", lr_decay=5e-5, roles=("transformer", "decoder"),
        weight_flags={"content": "--content-weight", "style": "--style-weight",
                      "identity_pixel": "--identity-pixel-weight", "identity_feature": "--identity-feature-weight"}),
    "adaattn": Recipe(
        model="adaattn", lr=2e-4, batch=8, iterations=None, size=512, crop=256, flip=True,
        weights={"global": 10.0, "local": 3.0, "content": 0.0},
        schedule="fifths", roles=("transformer", "decoder", "adaattn_3"),
        weight_flags={"global": "--global-weight", "local": "--local-weight", "content": "--content-weight"}),
}

ADAATTN_EPOCHS = 5     # the release: 2 epochs at the full rate + 3 decaying ones
FIFTHS_DECAY = 0.3


def lr_factor(recipe: Recipe, iteration: int, total: int) -> float:
    """Multiplier of the base learning rate at 0-based `iteration` of a run of `total` iterations."""
    if recipe.schedule == "inverse":
        return 1.0 / (1.0 + recipe.lr_decay * iteration)
    fifth = max(1, -(-total // ADAATTN_EPOCHS))       # ceil(total / 5)
    return FIFTHS_DECAY ** max(0, iteration // fifth - 1)


def default_iterations(recipe: Recipe, n_content: int, n_style: int, batch: int) -> int:
    """The recipe's iterations, or AdaAttN's 5 epochs (an epoch: max(#content, #style) images, as its loader)."""
    if recipe.iterations is not None:
        return recipe.iterations
    return ADAATTN_EPOCHS * max(1, -(-max(n_content, n_style) // batch))
