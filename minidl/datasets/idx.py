"""Reader for the IDX format used by MNIST and Fashion-MNIST, gzipped or not.

An IDX file is a tiny header followed by the raw array, everything big-endian:

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    then        d sizes, each a 4-byte unsigned integer
    then        the data, n_1 · n_2 · ... · n_d elements in C (row-major) order

so the first four bytes read as one integer give the "magic number": 0x00000803 = uint8, 3-D (images),
0x00000801 = uint8, 1-D (labels). Because the layout is exactly NumPy's, the whole data block becomes an
array with a single ``np.frombuffer`` call, no Python loop over pixels.
"""
import gzip
import zlib
from pathlib import Path

import numpy as np

# IDX element-type byte -> NumPy dtype (">" = big-endian, as stored in the file).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DatasetError(ValueError):
    """A dataset file is corrupt or inconsistent. The message names the file and what is wrong."""


def read_bytes(path, gzipped=None):
    """The file's bytes, decompressed first if ``gzipped`` (default: if its name ends in ``.gz``).

    A truncated or damaged gzip raises ``DatasetError`` (gzip itself raises EOFError/BadGzipFile, whose
    messages do not say which file was at fault).
    """
    path = Path(path)
    data = path.read_bytes()
    if gzipped is None:
        gzipped = path.suffix == ".gz"
    if not gzipped:
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DatasetError(f"{path}: not a valid gzip file (truncated or corrupt download?): {e}") from None


def parse_idx(data, name="<bytes>", magic=None):
    """Parse the bytes of an IDX file into a native-endian NumPy array.

    ``name`` is only used in error messages. If ``magic`` is given (e.g. ``0x00000803``), a file with any
    other magic number is rejected. The size of the data block must match the dimensions in the header
    exactly: a shorter file is truncated, a longer one is not the file we think it is.
    """
    if len(data) < 4:
        raise DatasetError(f"{name}: only {len(data)} bytes, too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if magic is not None and found != magic:
        raise DatasetError(f"{name}: wrong IDX magic number 0x{found:08X}, expected 0x{magic:08X}")
    type_code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise DatasetError(f"{name}: not an IDX file (magic number 0x{found:08X})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{name}: truncated header ({len(data)} bytes, {ndim} dimensions need {header})")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[type_code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetError(
            f"{name}: file has {len(data)} bytes but its header says shape {shape} of {dtype.name}, "
            f"which needs {expected} bytes ({'truncated' if len(data) < expected else 'trailing data'})"
        )
    # frombuffer is a zero-copy view of the (read-only) bytes; astype converts to native byte order and
    # makes a writable copy, so callers may modify the array in place.
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path, magic=None):
    """Read an IDX file (``.gz`` or plain) into a NumPy array; see ``parse_idx`` for the checks."""
    return parse_idx(read_bytes(path), name=str(path), magic=magic)
