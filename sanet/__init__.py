"""sanet: arbitrary style transfer — SANet (Park & Lee, CVPR 2019), AdaAttN (Liu et al., ICCV 2021), SCSA label maps
(CVPR 2025) — with runtime controls, any image size, tiles with exact global statistics.

    from sanet import Stylizer, Style, load_image, save_image
    st = Stylizer(device="auto")                 # weights: --weights / $SANET_WEIGHTS / user data dir
    out = st.stylize(load_image("photo.png"), [Style(load_image("starry.jpg"))], alpha=0.8)
    out = st.stylize(photo, [Style(starry)], model="adaattn")

Layout: models/ (the papers: data + pure functions), functional.py (shared math), vgg.py (the shared encoder),
runtime/ (Stylizer, tiles, controls, cache, planner, out-of-memory chain), labels.py (SCSA label maps),
checkpoints.py / weights.py (files), images.py (pixels).
"""
from .errors import Cancelled, DeviceError, InputError, OutOfMemory, SanetError, WeightsError
from .images import load_image, save_image
from .models import MODELS
from .runtime import DEFAULT_STYLE_MAX_SIDE, PREVIEW_LONG_SIDE, Style, StyleFeatures, Stylizer

__version__ = "0.1.0"
__all__ = ["Stylizer", "Style", "StyleFeatures", "DEFAULT_STYLE_MAX_SIDE", "PREVIEW_LONG_SIDE", "MODELS",
           "SanetError", "WeightsError", "DeviceError", "InputError", "Cancelled", "OutOfMemory",
           "load_image", "save_image", "__version__"]
