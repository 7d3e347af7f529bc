"""Gram matrices G = F Fᵀ / M with the positions split over the cores (the textbook twin:
``minidl/textbook/gram.py``)."""
import numpy as np

from ..autograd import Function
from . import memory, parallel


class FastGram(Function):
    """G = F Fᵀ / M for feature maps (N, C, H, W) viewed as F (N, C, M), M = H·W positions: (N, C, C).

    G_ij = (1/M) Σ_p F_ip F_jp: how strongly channels i and j fire together, averaged over positions, so the
    where is forgotten and only the what-goes-with-what (texture, colour) stays. Dividing by M makes G
    independent of the image size.

    Backward: G_ij depends on row i through F_jp / M and on row j through F_ip / M, so
        dL/dF_kp = (1/M) Σ_j (g_kj + g_jk) F_jp,   i.e.   dL/dF = (g + gᵀ) F / M,
    one (C, C) @ (C, M) product per image.
    """

    def forward(self, features):
        if features.ndim != 4:
            raise ValueError(f"gram_matrix expects feature maps (N, C, H, W), got shape {features.shape}")
        n, c, h, w = features.shape
        self.shape, self.m = features.shape, h * w
        self.f = features.reshape(n, c, h * w)
        gram = np.empty((n, c, c), dtype=features.dtype)
        for f, out in zip(self.f, gram):
            # F Fᵀ = Σ over ranges of positions of F[:, range] F[:, range]ᵀ: one range per core
            # (parallel.each), so that each reads only its share of the feature map
            parts = {}

            def product(lo, hi):  # positions lo..hi-1
                parts[lo] = f[:, lo:hi] @ f[:, lo:hi].T

            parallel.each(product, self.m)
            out[...] = parallel.ordered_sum(parts)  # in position order: the same rounding on every run
        gram /= self.m
        return gram

    def backward(self, g):
        # scale the small (C, C) factor, not the (C, M) product: one pass less over a feature-map-sized array
        s = (g + g.transpose(0, 2, 1)) / self.m
        df = memory.empty(self.f.shape, np.result_type(s, self.f))
        for si, f, out in zip(s, self.f, df):  # columns (positions) split over the cores
            parallel.each(lambda lo, hi: np.matmul(si, f[:, lo:hi], out=out[:, lo:hi]), self.m)
        return (df.reshape(self.shape),)


def gram_matrix(features):
    """Gram matrices G = F Fᵀ / (H·W) of feature maps (N, C, H, W) -> (N, C, C). See ``FastGram``."""
    return FastGram.apply(features)
