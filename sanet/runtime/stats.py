"""Whole-image statistics accumulated over tiles, exactly: per-channel mean / unbiased std of every feature map a
model reads, and (SCSA) per-label count / mean / biased variance. Chan et al.'s parallel merge in float64, so a tiled
run normalises every position with the same numbers as the whole-image run (the whole image is the one-tile case).
"""
from __future__ import annotations

import torch

from .. import functional as fn

_BLOCK = 1 << 22   # float64 elements per channel block (32 MiB): large maps are reduced a few channels at a time


class RunningStats:
    """Per-channel count / mean / M2 over many parts; mean_std() gives the global mean and unbiased std."""

    def __init__(self):
        self.n = 0
        self.mean = None
        self.m2 = None

    @staticmethod
    def _part(feat: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
        flat = feat.detach().flatten(2)[0]                                   # C × positions
        n = flat.shape[1]
        step = max(1, _BLOCK // max(1, n))
        means, m2s = [], []
        for a in range(0, flat.shape[0], step):
            block = flat[a:a + step].to(torch.float64)
            mb = block.mean(1)
            means.append(mb)
            m2s.append(((block - mb[:, None]) ** 2).sum(1))
        return n, torch.cat(means), torch.cat(m2s)

    def add(self, feat: torch.Tensor) -> None:
        if feat.shape[-1] * feat.shape[-2] == 0:
            return
        n_b, mean_b, m2_b = self._part(feat)
        if self.n == 0:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta ** 2 * (self.n * n_b / n)
        self.n = n

    def mean_std(self, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        var = self.m2 / max(self.n - 1, 1) + fn.EPS
        shape = (1, -1, 1, 1)
        return (self.mean.reshape(shape).to(device=device, dtype=dtype),
                var.sqrt().reshape(shape).to(device=device, dtype=dtype))


class RegionAccumulator:
    """Per-label count / mean / M2 of N×C features in float64, merged over any number of parts (Chan et al.):
    whole-image statistics from tiles. finish() gives biased variances, as semantic AdaIN needs."""

    def __init__(self):
        self.parts: dict[int, tuple[float, torch.Tensor, torch.Tensor]] = {}

    def add(self, feat: torch.Tensor, labels: torch.Tensor) -> None:
        uniq, _, count, mean, m2 = fn.label_sums(feat.float(), labels)   # per part in float32, merged in float64
        count, mean, m2 = count.double(), mean.double(), m2.double()
        for j, k in enumerate(uniq.tolist()):
            nb, mb, qb = float(count[j]), mean[j], m2[j]
            if k not in self.parts:
                self.parts[k] = (nb, mb, qb)
                continue
            na, ma, qa = self.parts[k]
            n = na + nb
            d = mb - ma
            self.parts[k] = (n, ma + d * (nb / n), qa + qb + d * d * (na * nb / n))

    def finish(self, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sorted labels L, counts L, means L×C, biased variances L×C), float64 on `device`."""
        keys = sorted(self.parts)
        n = torch.tensor([self.parts[k][0] for k in keys], dtype=torch.float64)
        mean = torch.stack([self.parts[k][1] for k in keys]).cpu()
        var = torch.stack([self.parts[k][2] for k in keys]).cpu() / n[:, None]
        return (torch.tensor(keys, dtype=torch.long, device=device), n.to(device), mean.to(device), var.to(device))


class Stats:
    """The statistics of one call's feature maps (what models read through Context.stats)."""

    def __init__(self, device, dtype, region_names: tuple[str, ...] = ()):
        self.device, self.dtype = device, dtype
        self._global: dict[str, RunningStats] = {}
        self._regions = {name: RegionAccumulator() for name in region_names}
        self._final: dict = {}

    def add(self, feats: dict[str, torch.Tensor], labels: dict[str, torch.Tensor] | None = None) -> None:
        """One part (tile core) of every map; labels: name → flat label ids of that part (for region_names)."""
        self._final.clear()
        for name, x in feats.items():
            self._global.setdefault(name, RunningStats()).add(x)
            if name in self._regions and labels is not None:
                self._regions[name].add(fn.tokens(x)[0], labels[name])

    def mean_std(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        key = ("g", name)
        if key not in self._final:
            self._final[key] = self._global[name].mean_std(self.device, self.dtype)
        return self._final[key]

    def regions(self, name: str):
        key = ("r", name)
        if key not in self._final:
            self._final[key] = self._regions[name].finish(self.device)
        return self._final[key]

    @classmethod
    def of(cls, feats: dict[str, torch.Tensor]) -> "Stats":
        """Statistics of whole maps (a style's own)."""
        x = next(iter(feats.values()))
        s = cls(x.device, x.dtype)
        s.add(feats)
        return s
