"""The model-agnostic runtime: Stylizer (public API), execution of plans in tiles with exact global statistics,
the controls' mix, the style-feature cache, the memory planner and the out-of-memory chain.

Modules: stylizer (entry point), execute (the one tiled runner), stats (whole-image statistics over tiles),
controls (α / weights / regions mix, colour, selection), cache (style features), planner (memory → plan),
padding (sizes, spans), oom (fallback chain).
"""
from .cache import FeatureCache
from .stylizer import DEFAULT_STYLE_MAX_SIDE, PREVIEW_LONG_SIDE, Style, StyleFeatures, Stylizer

__all__ = ["Stylizer", "Style", "StyleFeatures", "FeatureCache", "DEFAULT_STYLE_MAX_SIDE", "PREVIEW_LONG_SIDE"]
