"""Max and average pooling, the textbook way: each window offset is one strided view of the input."""
from .convolution import output_size, pair


def pool_geometry(x, kernel_size, stride, name):
    """Validate a pooling call on x; return ((kh, kw), (sh, sw), (H_out, W_out)). No padding."""
    kh, kw = pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else pair(stride, "stride")
    if x.ndim != 4:
        raise ValueError(f"{name} expects x of shape (N, C, H, W), got {x.shape}")
    if min(kh, kw, sh, sw) < 1:
        raise ValueError(f"kernel_size and stride must be >= 1, got kernel {(kh, kw)} and stride {(sh, sw)}")
    H, W = x.shape[2:]
    if kh > H or kw > W:
        raise ValueError(f"pooling kernel {kh}×{kw} is larger than the input {H}×{W} (x {x.shape})")
    return (kh, kw), (sh, sw), (output_size(H, kh, sh, 0), output_size(W, kw, sw, 0))
