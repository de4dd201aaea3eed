"""sanet: SANet arbitrary style transfer (Park & Lee, CVPR 2019) with runtime controls.

    from sanet import Stylizer, Style, load_image, save_image
    st = Stylizer(device="auto")                 # weights: --weights / $SANET_WEIGHTS / user data dir
    out = st.stylize(load_image("photo.png"), [Style(load_image("starry.jpg"))], alpha=0.8)
"""
from .engine import DEFAULT_STYLE_MAX_SIDE, PREVIEW_LONG_SIDE, Style, StyleFeatures, Stylizer
from .errors import Cancelled, DeviceError, InputError, SanetError, WeightsError
from .images import load_image, save_image

__version__ = "0.1.0"
__all__ = ["Stylizer", "Style", "StyleFeatures", "DEFAULT_STYLE_MAX_SIDE", "PREVIEW_LONG_SIDE",
           "SanetError", "WeightsError", "DeviceError", "InputError", "Cancelled",
           "load_image", "save_image", "__version__"]
