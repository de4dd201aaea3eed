"""Image helpers shared by the engine tests."""
import numpy as np
import torch


def smooth_image(h, w, seed=0, channels=3):
    """Low-frequency random image in [0,1]: realistic enough that features and outputs vary."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, channels, max(1, h // 8), max(1, w // 8), generator=g)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return img[0].permute(1, 2, 0).numpy().astype(np.float32)


def to_tensor(img):
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()


def rel_dev(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())
