"""The Gram matrix of style transfer: which feature channels fire together, wherever they fire."""
import numpy as np

from ..autograd import Function


class Gram(Function):
    """G = F Fᵀ / M for feature maps (N, C, H, W) viewed as F (N, C, M), M = H·W positions: G is (N, C, C).

    G_ij = (1/M) Σ_p F_ip F_jp: how strongly channels i and j fire together, averaged over the positions p.
    The where is forgotten and the what-goes-with-what (texture, colour) stays; dividing by M makes G
    independent of the image size.

    Backward: F_kp appears in row k of G (as F_ip with i = k) and in column k (as F_jp with j = k), so

        dL/dF_kp = (1/M) Σ_j (g_kj + g_jk) F_jp,      i.e.      dL/dF = (g + gᵀ) F / M
    """

    def forward(self, features):
        if features.ndim != 4:
            raise ValueError(f"gram_matrix expects feature maps (N, C, H, W), got shape {features.shape}")
        N, C, H, W = features.shape
        self.f, self.shape = features.reshape(N, C, H * W), features.shape
        return self.f @ self.f.transpose(0, 2, 1) / (H * W)

    def backward(self, g):
        M = self.f.shape[2]
        df = (g + g.transpose(0, 2, 1)) @ self.f / M
        return (df.reshape(self.shape),)


def gram_matrix(features):
    """Gram matrices G = F Fᵀ / (H·W) of feature maps (N, C, H, W) -> (N, C, C). See ``Gram``."""
    return Gram.apply(features)
