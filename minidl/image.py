"""Image files in and out, and the array layouts minidl uses for pictures.

Two layouts, one per job:

- **HWC** (height, width, 3), float32 RGB in [0, 1]: what ``load_image`` returns and ``save_image`` takes,
  the layout of image files, Pillow and ``matplotlib.pyplot.imshow``;
- **NCHW** (1, 3, height, width), float32 RGB in [0, 1]: what networks take (``to_nchw`` / ``to_hwc``
  convert; the batch axis is always 1 here).

Pixel values are always in [0, 1], never 0-255: the conversion to whatever a network expects (0-255 BGR
minus a mean for Caffe weights, normalised RGB for torchvision weights) is the model's ``preprocess``.

``load_image`` accepts any JPEG or PNG Pillow can open: grayscale, palette, RGBA (composited on white),
16-bit and EXIF-rotated images all come out as the same (H, W, 3) float32 array. Every failure (missing
file, not an image, truncated data) raises ``ImageError`` with a one-line message naming the file.

``painting`` draws the project's own style image: a swirling brush-stroke pattern made from sinusoids and
noise, so the style-transfer example works offline without any third-party picture.
"""
from pathlib import Path

import numpy as np

from .fileio import atomic_path


class ImageError(OSError):
    """An image file could not be read (missing, unreadable, not an image). The message names the file."""


# --- reading --------------------------------------------------------------------------------------------

def load_image(path, long_side=None):
    """Read an image file as float32 RGB (H, W, 3) in [0, 1], optionally resized to ``long_side`` pixels.

    EXIF orientation is applied (phone photos come out upright), grayscale is repeated over the three
    channels, transparent pixels are composited on white and 16-bit images are scaled by 1/65535.
    """
    rgb = _to_rgb_float(open_image(path))
    if long_side is not None:
        rgb = resize_long_side(rgb, long_side)
    return rgb


def open_image(path):
    """The decoded Pillow image in ``path``, EXIF orientation applied; ``ImageError`` naming the file if it
    is missing, a folder, not an image or truncated (``load_image`` and ``vision.io.read_image`` use it)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image file")
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here, inside the try
            return ImageOps.exif_transpose(img)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read (expected a JPEG or PNG file)") from None
    except (OSError, ValueError, SyntaxError) as e:  # truncated data, bad chunks, permission denied, ...
        raise ImageError(f"{path}: cannot read image ({_one_line(e)})") from None


def _to_rgb_float(img):
    """Any Pillow mode -> float32 (H, W, 3) in [0, 1]."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grayscale PNGs open as 'I;16' (or 'I' in older Pillow). Pillow's convert('RGB') would clip
        # them to 0-255 instead of scaling, turning most of the picture white, so scale by hand.
        gray = np.asarray(img, dtype=np.float32)
        full_scale = 65535.0 if mode.startswith("I;16") or gray.max(initial=0) > 255 else 255.0
        return np.repeat((np.clip(gray, 0, full_scale) / full_scale)[..., None], 3, axis=2)
    if mode == "F":
        gray = np.asarray(img, dtype=np.float32)
        gray = gray / 255.0 if gray.max(initial=0) > 1 else gray
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info):
        # Transparent pixels often hold arbitrary (black) colour under alpha 0: show them on white instead.
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:]
        return rgba[..., :3] * alpha + (1.0 - alpha)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _one_line(e):
    return " ".join(str(e).split()) or type(e).__name__


# --- resizing and layouts ---------------------------------------------------------------------------------

def resize(image, height, width):
    """Resize an (H, W, 3) float image with Lanczos filtering (each channel as a float Pillow image).

    Working in float keeps 16-bit precision; Lanczos overshoots slightly at sharp edges, hence the clip.
    """
    from PIL import Image

    image = _check_hwc(image)
    if image.shape[:2] == (height, width):
        return image.astype(np.float32, copy=True)
    channels = [  # a 2-D float32 array is Pillow's mode "F" (saying mode= warns on some Pillow versions)
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32))
                   .resize((width, height), Image.Resampling.LANCZOS))
        for c in range(image.shape[2])
    ]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0).astype(np.float32)


def resize_long_side(image, long_side):
    """Resize so that the longer side is ``long_side`` pixels, keeping the aspect ratio (up or down)."""
    if long_side < 1:
        raise ValueError(f"long side must be at least 1 pixel, got {long_side}")
    h, w = _check_hwc(image).shape[:2]
    scale = long_side / max(h, w)
    return resize(image, max(1, round(h * scale)), max(1, round(w * scale)))


def to_nchw(image):
    """(H, W, 3) -> (1, 3, H, W) float32, the layout networks take."""
    return np.ascontiguousarray(_check_hwc(image).transpose(2, 0, 1)[None], dtype=np.float32)


def to_hwc(image):
    """(1, 3, H, W) or (3, H, W) array or Tensor -> (H, W, 3) float32, the layout files and plots take."""
    a = np.asarray(getattr(image, "data", image))
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3 or a.shape[0] != 3:
        raise ValueError(f"to_hwc expects an image of shape (1, 3, H, W) or (3, H, W), got {a.shape}")
    return np.ascontiguousarray(a.transpose(1, 2, 0), dtype=np.float32)


def _check_hwc(image):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    return image


# --- writing ----------------------------------------------------------------------------------------------

def to_uint8(image):
    """(H, W, 3) floats in [0, 1] -> uint8, rounding to the nearest level (values outside are clipped)."""
    return (np.clip(_check_hwc(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_image(path, image, title=None):
    """Write an image ((H, W, 3) or (1, 3, H, W), floats in [0, 1]) atomically; format from the suffix.

    ``title`` is stored as the PNG's "Title" text field (image viewers show it in the file's properties).
    """
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    a = np.asarray(getattr(image, "data", image))
    if a.ndim == 4 or (a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3):
        a = to_hwc(a)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported image suffix {path.suffix!r} (use .png or .jpg)")
    options = {}
    if fmt == "PNG" and title:
        options["pnginfo"] = PngInfo()
        options["pnginfo"].add_text("Title", title)
    if fmt == "JPEG":
        options["quality"] = 95
    with atomic_path(path) as tmp:
        # the temporary name ends in .part, so the format is given explicitly
        Image.fromarray(to_uint8(a)).save(tmp, format=fmt, **options)
    return path


# --- the project's own style image ------------------------------------------------------------------------

# A night-sky palette (deep blue to cobalt to teal, then straw yellow and cream for the bright swirls).
PALETTE = np.array([
    (0.05, 0.07, 0.20), (0.09, 0.17, 0.42), (0.13, 0.32, 0.64), (0.24, 0.50, 0.78), (0.40, 0.66, 0.78),
    (0.62, 0.77, 0.72), (0.93, 0.84, 0.45), (0.98, 0.93, 0.70),
], dtype=np.float64)


def painting(height=512, width=None, seed=0):
    """A painting-like picture of swirling brush strokes, float32 (height, width, 3) in [0, 1].

    How it is drawn (all sizes are fractions of the image, so it looks the same at any resolution):

    1. A stream function ψ(x, y): a few random low-frequency sinusoids plus Gaussian vortices. The flow
       v = (∂ψ/∂y, -∂ψ/∂x) runs along the level lines of ψ, so it swirls around the vortices.
    2. Brush strokes by *line integral convolution*: coarse random noise (the bristles) is averaged along
       the flow over a stroke length, so the noise is smeared into streaks that follow the swirls.
    3. Colour: the palette is indexed by ψ (bands of colour along the flow) shifted by the stroke texture,
       then shaded by the strokes so that neighbouring strokes differ in tone, like paint.
    """
    from scipy.ndimage import gaussian_filter, map_coordinates, zoom

    width = height if width is None else width
    rng = np.random.default_rng(seed)
    s = max(height, width)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64) / s  # coordinates in units of the long side

    # 1. stream function: sinusoids (the large-scale flow) plus vortices (the swirls)
    psi = np.zeros_like(x)
    for _ in range(5):
        k = rng.uniform(1.0, 4.0) * 2 * np.pi
        angle = rng.uniform(0, 2 * np.pi)
        psi += rng.uniform(0.3, 1.0) / k * np.sin(k * (np.cos(angle) * x + np.sin(angle) * y) + rng.uniform(0, 2 * np.pi))
    vortices = []
    for _ in range(rng.integers(4, 7)):
        cx, cy = rng.uniform(0.05, 0.95, 2) * (width / s, height / s)
        r = rng.uniform(0.05, 0.14)
        strength = rng.choice([-1, 1]) * rng.uniform(0.08, 0.16)
        vortices.append((cx, cy, r))
        psi += strength * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
    dpsi_dy, dpsi_dx = np.gradient(psi, 1.0 / s)
    vx, vy = dpsi_dy, -dpsi_dx
    speed = np.hypot(vx, vy) + 1e-9
    vx, vy = vx / speed, vy / speed  # unit flow: strokes of the same length everywhere

    # 2. brush strokes: coarse noise smeared along the flow (line integral convolution)
    bristle = max(2, s // 110)  # noise cell size: the stroke width
    coarse = rng.random((height // bristle + 2, width // bristle + 2))
    noise = zoom(coarse, bristle, order=0)[:height, :width]
    noise = gaussian_filter(noise, 0.6)
    length = max(4, s // 40)  # half stroke length in pixels
    total = noise.copy()
    for direction in (1.0, -1.0):
        py, px = np.mgrid[0:height, 0:width].astype(np.float64)
        for _ in range(length):
            iy, ix = np.clip(py, 0, height - 1).astype(int), np.clip(px, 0, width - 1).astype(int)
            px += direction * vx[iy, ix]
            py += direction * vy[iy, ix]
            total += map_coordinates(noise, [py, px], order=1, mode="reflect")
    strokes = total / (2 * length + 1)
    strokes = (strokes - strokes.mean()) / (strokes.std() + 1e-9)  # zero mean, unit spread

    # 3. colour: palette indexed by the stream function, shifted and shaded by the strokes
    t = (psi - psi.min()) / (np.ptp(psi) + 1e-9)
    t = t ** 1.3  # more sky than light
    glow = np.zeros_like(x)
    for cx, cy, r in vortices[:3]:  # the first vortices glow, like halos around stars
        glow += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (0.6 * r) ** 2))
    t = np.clip(t + 0.55 * glow + 0.09 * strokes, 0, 1)
    pos = t * (len(PALETTE) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(PALETTE) - 2)
    frac = (pos - lo)[..., None]
    rgb = PALETTE[lo] * (1 - frac) + PALETTE[lo + 1] * frac
    rgb *= (1.0 + 0.16 * strokes)[..., None]
    return np.clip(rgb, 0, 1).astype(np.float32)
