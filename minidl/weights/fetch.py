"""Download published weights, check them, and convert them to minidl's format in the weights folder.

``fetch("vgg19")`` downloads Keras's VGG19 file (the VGG authors' ImageNet weights), checks its md5 against
the checksum Keras itself uses, converts it with ``convert.convert`` and stores the result where
``minidl.models.vgg19(weights="imagenet")`` looks for it (see ``paths.py``). The download goes to a
temporary folder beside the destination and is deleted afterwards; the converted file is written
atomically, so an interrupted or corrupt download never leaves a file that looks usable.
"""
import tempfile
from pathlib import Path

from ..fileio import DownloadError, download, file_digest
from . import paths
from .convert import convert

KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"

# include_top -> (file name in Keras's bucket, its md5 as listed in keras.applications.vgg19, minidl's name)
VGG19_FILES = {
    False: ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "253f8cb515780f3b799900260a226db6",
            "vgg19_imagenet_notop.h5"),
    True: ("vgg19_weights_tf_dim_ordering_tf_kernels.h5", "cbe5617147190e668d6c5d5026f83318",
           "vgg19_imagenet.h5"),
}
ARCHS = ("vgg19",)


def imagenet_filename(arch="vgg19", include_top=False):
    """minidl's file name for the ImageNet weights, e.g. ``vgg19_imagenet_notop.h5``."""
    _check_arch(arch)
    return VGG19_FILES[bool(include_top)][2]


def fetch(arch="vgg19", include_top=False, dest_dir=None, base_url=None, force=False, log=print):
    """Download, verify (md5) and convert the ImageNet weights of ``arch``; return the converted file's path.

    ``dest_dir`` defaults to ``paths.weights_dir()``; ``base_url`` replaces Keras's download location (a
    mirror, or a local server in tests). An existing file is kept unless ``force``. Raises
    ``minidl.fileio.DownloadError`` if the download fails or its checksum does not match.
    """
    _check_arch(arch)
    remote_name, md5, local_name = VGG19_FILES[bool(include_top)]
    dest_dir = Path(dest_dir) if dest_dir is not None else paths.weights_dir()
    dest = dest_dir / local_name
    if dest.exists() and not force:
        log(f"{dest} already exists (use --force to download it again)")
        return dest
    url = (base_url or KERAS_BASE_URL).rstrip("/") + "/" + remote_name

    def verify(tmp):
        digest = file_digest(tmp, "md5")
        if digest != md5:
            raise ValueError(f"md5 checksum mismatch: got {digest}, expected {md5} (corrupt or changed file)")

    dest_dir.mkdir(parents=True, exist_ok=True)
    # The raw Keras file is only an intermediate: keep it beside the destination (same disk, no copy
    # across file systems) in a temporary folder that is removed whatever happens.
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".fetch-") as tmp_dir:
        try:
            raw = download([url], Path(tmp_dir) / remote_name, verify=verify, desc=remote_name)
        except DownloadError as e:
            raise DownloadError(
                f"{' '.join(str(e).split())}. Ways forward: download {url} on a machine that can and run "
                f"`python -m minidl.weights convert {remote_name} {dest}`; or fetch from a mirror with --base-url "
                "URL (base_url=); or try style transfer offline with untrained weights: "
                "python examples/style_transfer.py --weights random"
            ) from None
        log(f"converting {remote_name} to minidl's format")
        convert(raw, dest, include_top=include_top)
    log(f"saved {dest}")
    return dest


def _check_arch(arch):
    if arch not in ARCHS:
        raise ValueError(f"no downloadable weights for {arch!r}; available: {', '.join(ARCHS)}")
