"""Tests for minidl.datasets: IDX parsing, the search order for Fashion-MNIST files and the download path.

Every test runs with HOME, MINIDL_DATA, the system folder and the mirror list pointed at temporary
places, so the results do not depend on this machine; downloads only go to a server on 127.0.0.1.
"""
import gzip
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from minidl.datasets import FASHION_MNIST_CLASSES, DatasetError, load_fashion_mnist, read_idx
from minidl.datasets import fashion_mnist as fm
from minidl.fileio import DownloadError

REAL_SYSTEM_DIR = Path(fm.SYSTEM_DIR)


# ---------------------------------------------------------------------------------------------- helpers
def idx_bytes(array, magic=None):
    """Encode ``array`` (uint8) as IDX; ``magic`` overrides the first four bytes."""
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x00000800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def make_split(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write(path, data, gz=False):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_split(folder, split, n, seed=0, gz=False):
    """Write a small valid split of ``n`` examples to ``folder``; return (images, labels) written."""
    images, labels = make_split(n, seed)
    img_name, lbl_name = fm.FILES[split]
    write(Path(folder) / img_name, idx_bytes(images), gz)
    write(Path(folder) / lbl_name, idx_bytes(labels), gz)
    return images, labels


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Fresh HOME, no MINIDL_DATA, an empty system folder and no mirrors, for every test."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(fm, "MIRRORS", [])
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def cache(tmp_path):
    return tmp_path / "home" / ".cache" / "minidl" / "fashion-mnist"


# ---------------------------------------------------------------------------------------------- IDX reader
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_good(tmp_path, gz):
    images, labels = make_split(7)
    pi = write(tmp_path / "img", idx_bytes(images), gz)
    pl = write(tmp_path / "lbl", idx_bytes(labels), gz)
    got = read_idx(pi, magic=0x803)
    assert got.dtype == np.uint8 and got.shape == (7, 28, 28)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(read_idx(pl, magic=0x801), labels)
    got[0, 0, 0] = 1  # writable, not a view of read-only bytes


def test_read_idx_big_endian_types(tmp_path):
    a = (np.arange(6) - 3).astype(">i4").reshape(2, 3)  # stored big-endian, as IDX requires
    p = write(tmp_path / "x", (0x0C02).to_bytes(4, "big") + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
              + a.tobytes())
    got = read_idx(p)
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, a)


def test_wrong_magic_names_file(tmp_path):
    images, _ = make_split(3)
    p = write(tmp_path / "train-images-idx3-ubyte", idx_bytes(images, magic=0x00000801))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.*magic.*0x00000801.*0x00000803"):
        read_idx(p, magic=0x803)


def test_not_idx_at_all(tmp_path):
    p = write(tmp_path / "junk", b"<html>not found</html>")
    with pytest.raises(DatasetError, match="junk.*not an IDX"):
        read_idx(p)


def test_truncated_gzip_names_file(tmp_path):
    images, _ = make_split(3)
    p = write(tmp_path / "imgs", idx_bytes(images), gz=True)
    p.write_bytes(p.read_bytes()[:-40])
    with pytest.raises(DatasetError, match=r"imgs\.gz.*gzip"):
        read_idx(p)


@pytest.mark.parametrize("delta", [-1, +5])
def test_size_mismatch(tmp_path, delta):
    images, _ = make_split(3)
    data = idx_bytes(images)
    data = data[:delta] if delta < 0 else data + bytes(delta)
    p = write(tmp_path / "imgs", data)
    with pytest.raises(DatasetError, match=r"imgs: file has .* bytes but its header says shape \(3, 28, 28\)"):
        read_idx(p)


def test_count_larger_than_data(tmp_path):
    images, _ = make_split(3)
    data = bytearray(idx_bytes(images))
    data[4:8] = (4).to_bytes(4, "big")  # header claims 4 images, 3 present
    p = write(tmp_path / "imgs", bytes(data))
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(p)


def test_label_out_of_range(tmp_path):
    images, labels = write_split(tmp_path / "d", "test", 5)
    labels[3] = 10
    write(tmp_path / "d" / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte: label 10 at index 3 is out of range 0\.\.9"):
        load_fashion_mnist("test", root=tmp_path / "d", download=False)


def test_images_labels_count_disagree(tmp_path):
    write_split(tmp_path / "d", "test", 5)
    _, labels = make_split(4)
    write(tmp_path / "d" / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte holds 5 images but .*t10k-labels-idx1-ubyte "
                                           "holds 4 labels"):
        load_fashion_mnist("test", root=tmp_path / "d", download=False)


def test_wrong_image_size(tmp_path):
    d = tmp_path / "d"
    write_split(d, "test", 2)
    write(d / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((2, 32, 32), np.uint8)))
    with pytest.raises(DatasetError, match="32×32, expected 28×28"):
        load_fashion_mnist("test", root=d, download=False)


def test_corrupt_file_is_not_skipped(tmp_path, monkeypatch):
    """A corrupt file in root is an error even though a good copy exists further down the search path."""
    write_split(tmp_path / "good", "test", 3)
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "good"))
    write_split(tmp_path / "bad", "test", 3, gz=True)
    p = tmp_path / "bad" / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz"):
        load_fashion_mnist("test", root=tmp_path / "bad")


# ---------------------------------------------------------------------------------------------- search order
def test_load_plain_and_gz_returns_types(tmp_path):
    images, labels = write_split(tmp_path / "d", "train", 6, gz=True)
    x, y = load_fashion_mnist("train", root=tmp_path / "d", download=False)
    assert x.dtype == np.uint8 and x.shape == (6, 28, 28)
    assert y.dtype == np.int64 and y.shape == (6,)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_mixed_gz_and_plain_in_one_folder(tmp_path):
    d = tmp_path / "d"
    images, labels = make_split(4)
    write(d / "t10k-images-idx3-ubyte", idx_bytes(images), gz=True)
    write(d / "t10k-labels-idx1-ubyte", idx_bytes(labels), gz=False)
    x, y = load_fashion_mnist("test", root=d, download=False)
    np.testing.assert_array_equal(y, labels)


def test_search_order(tmp_path, monkeypatch):
    """Each location holds a different number of examples, so the count tells which one was used."""
    root, env, system = tmp_path / "root", tmp_path / "env", tmp_path / "system"
    for folder, n in ((root, 1), (env, 2), (cache(tmp_path), 3), (system, 4)):
        write_split(folder, "test", n)
    monkeypatch.setenv("MINIDL_DATA", str(env))

    def count(**kw):
        return len(load_fashion_mnist("test", download=False, **kw)[1])

    assert count(root=root) == 1  # root beats MINIDL_DATA
    assert count() == 2  # MINIDL_DATA beats the cache
    monkeypatch.delenv("MINIDL_DATA")
    assert count() == 3  # cache beats the system folder
    for f in cache(tmp_path).iterdir():
        f.unlink()
    assert count() == 4  # system folder last
    assert count(root=tmp_path / "empty") == 4  # a root without the files is just skipped


def test_folder_needs_all_files_of_the_split(tmp_path, monkeypatch):
    env = tmp_path / "env"
    write_split(env, "test", 2)
    write(env / "train-images-idx3-ubyte", idx_bytes(make_split(2)[0]))  # train labels missing
    write_split(tmp_path / "system", "train", 5)
    monkeypatch.setenv("MINIDL_DATA", str(env))
    assert len(load_fashion_mnist("test", download=False)[1]) == 2
    assert len(load_fashion_mnist("train", root=tmp_path / "system", download=False)[1]) == 5  # root first


def test_a_minidl_data_folder_without_the_files_is_an_error_not_passed_over(tmp_path, monkeypatch):
    env = tmp_path / "env"
    write(env / "train-images-idx3-ubyte", idx_bytes(make_split(2)[0]))  # train labels missing
    write_split(tmp_path / "system", "train", 5)  # a copy further down the search order must not be used
    monkeypatch.setenv("MINIDL_DATA", str(env))
    with pytest.raises(FileNotFoundError) as e:
        load_fashion_mnist("train")  # not downloaded either: the user named the folder
    assert str(e.value) == (f"MINIDL_DATA={env}: {env} does not hold the Fashion-MNIST train file(s) "
                            "train-labels-idx1-ubyte (plain or .gz); put them there, or unset MINIDL_DATA")
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=f"there is no folder {tmp_path / 'nowhere'} to hold the "
                                                "Fashion-MNIST test file.s. t10k-images-idx3-ubyte, t10k-labels"):
        load_fashion_mnist("test")
    assert not cache(tmp_path).exists()


def test_not_found_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)not found.*apt-get install dataset-fashion-mnist") as info:
        load_fashion_mnist("test", download=False)
    assert "MINIDL_DATA" in str(info.value) and str(cache(tmp_path)) in str(info.value)


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation")


def test_classes():
    assert len(FASHION_MNIST_CLASSES) == 10
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top" and FASHION_MNIST_CLASSES[9] == "Ankle boot"


# ---------------------------------------------------------------------------------------------- downloads
class Handler(http.server.BaseHTTPRequestHandler):
    routes = {}  # path -> bytes | ("drop", bytes) ; anything else 404
    hits = []

    def do_GET(self):
        self.hits.append(self.path)
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        if isinstance(route, tuple):  # announce more bytes than we send, then hang up
            body = route[1]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(route)))
        self.end_headers()
        self.wfile.write(route)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server():
    Handler.routes, Handler.hits = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def serve_split(monkeypatch, prefix, split, n, seed=0, register_hash=True):
    """Serve a small split under ``prefix`` (gzipped, as the mirrors do); inject its hashes."""
    images, labels = make_split(n, seed)
    for name, array in zip(fm.FILES[split], (images, labels)):
        raw = idx_bytes(array)
        Handler.routes[f"{prefix}/{name}.gz"] = gzip.compress(raw)
        if register_hash:
            monkeypatch.setitem(fm.SHA256, name, hashlib.sha256(raw).hexdigest())
    return images, labels


def test_download_good(tmp_path, monkeypatch, server):
    images, labels = serve_split(monkeypatch, "/m1", "test", 5)
    monkeypatch.setattr(fm, "MIRRORS", [server + "/m1/"])
    x, y = load_fashion_mnist("test")
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert sorted(os.listdir(cache(tmp_path))) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    # second call reads the cache and does not touch the network
    n_hits = len(Handler.hits)
    load_fashion_mnist("test")
    assert len(Handler.hits) == n_hits


def test_download_goes_to_cache_not_root(tmp_path, monkeypatch, server):
    serve_split(monkeypatch, "/m", "test", 3)
    load_fashion_mnist("test", root=tmp_path / "root", mirrors=[server + "/m"])
    assert not (tmp_path / "root").exists()
    assert (cache(tmp_path) / "t10k-images-idx3-ubyte.gz").is_file()


def test_download_hash_mismatch_leaves_nothing(tmp_path, monkeypatch, server):
    serve_split(monkeypatch, "/m", "test", 3)
    monkeypatch.setitem(fm.SHA256, "t10k-images-idx3-ubyte", "0" * 64)
    with pytest.raises(DownloadError, match="(?s)SHA-256 mismatch.*apt-get install dataset-fashion-mnist.*MINIDL_DATA"):
        load_fashion_mnist("test", mirrors=[server + "/m/"])
    assert not cache(tmp_path).exists() or os.listdir(cache(tmp_path)) == []


def test_download_connection_dropped_leaves_nothing(tmp_path, monkeypatch, server):
    serve_split(monkeypatch, "/m", "test", 50)
    key = "/m/t10k-images-idx3-ubyte.gz"
    Handler.routes[key] = ("drop", Handler.routes[key])
    with pytest.raises(DownloadError, match="(?s)t10k-images-idx3-ubyte.gz.*MINIDL_DATA"):
        load_fashion_mnist("test", mirrors=[server + "/m/"])
    assert not cache(tmp_path).exists() or os.listdir(cache(tmp_path)) == []


def test_download_first_mirror_404_then_second(tmp_path, monkeypatch, server):
    images, labels = serve_split(monkeypatch, "/good", "train", 4)
    x, y = load_fashion_mnist("train", mirrors=[server + "/missing/", server + "/good/"])
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert Handler.hits == ["/missing/train-images-idx3-ubyte.gz", "/good/train-images-idx3-ubyte.gz",
                            "/missing/train-labels-idx1-ubyte.gz", "/good/train-labels-idx1-ubyte.gz"]


def test_download_all_mirrors_fail_names_every_url(tmp_path, server):
    with pytest.raises(DownloadError) as info:
        load_fashion_mnist("test", mirrors=[server + "/a/", server + "/b/"])
    assert "/a/t10k-images-idx3-ubyte.gz" in str(info.value) and "/b/t10k-images-idx3-ubyte.gz" in str(info.value)


def test_download_only_missing_files(tmp_path, monkeypatch, server):
    images, labels = serve_split(monkeypatch, "/m", "test", 3)
    write(cache(tmp_path) / "t10k-images-idx3-ubyte", idx_bytes(images))  # left by an earlier run
    load_fashion_mnist("test", mirrors=[server + "/m/"])
    assert Handler.hits == ["/m/t10k-labels-idx1-ubyte.gz"]


# ---------------------------------------------------------------------------------------------- real data
@pytest.mark.skipif(not REAL_SYSTEM_DIR.is_dir(), reason="dataset-fashion-mnist package not installed")
def test_real_test_split():
    x, y = load_fashion_mnist("test", root=REAL_SYSTEM_DIR, download=False)
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, 1000))
    assert FASHION_MNIST_CLASSES[y[0]] == "Ankle boot"
