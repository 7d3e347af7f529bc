"""Weight files: the converters (Keras .h5 in its real layouts, torchvision .pth), fetch, the search path.

The source files are written here exactly the way Keras / torch.save write them, with the real VGG19
shapes and random values, so the conversion is checked value by value without any download.
"""
import http.server
import os
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from minidl.fileio import DownloadError, file_digest
import importlib

from minidl.weights import __main__ as cli
from minidl.weights import paths
from minidl.weights.convert import (
    convert, detect_format, keras_flatten_kernel_to_chw, torchvision_keys,
)
from minidl.weights.format import (
    PREPROCESSING, WeightsFormatError, read_vgg19, vgg19_shapes, write_vgg19,
)

TOP = ("fc1", "fc2", "predictions")
# `minidl.weights.fetch` is the function (re-exported by the package); the module is in sys.modules
fetch_mod = importlib.import_module("minidl.weights.fetch")


# --- writing source files the way Keras and PyTorch do ------------------------------------------------

def keras_weights(include_top, seed=0):
    """{layer: (kernel, bias)} in Keras's layout (HWIO conv kernels, (in, out) dense kernels), random."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (k_shape, b_shape) in vgg19_shapes(include_top).items():
        keras_shape = k_shape[2:] + k_shape[1::-1] if len(k_shape) == 4 else k_shape[::-1]
        # uniform rather than normal: twice as fast to draw for fc1's 100M values, just as distinct
        out[name] = (rng.random(keras_shape, dtype=np.float32), rng.random(b_shape, dtype=np.float32))
    return out


def keras_layer_names(include_top):
    names = ["input_1"]
    for b, n in enumerate((2, 2, 4, 4, 4), start=1):
        names += [f"block{b}_conv{i}" for i in range(1, n + 1)] + [f"block{b}_pool"]
    return names + (["flatten", "fc1", "fc2", "predictions"] if include_top else [])


def write_keras_h5(path, weights, style="new", model_weights=False, skip=(), layer_names=None):
    """Write ``weights`` like Keras's ``save_weights`` (or ``model.save`` with ``model_weights=True``).

    style "old": the 2016 release's dataset names, ``block1_conv1_W_1:0`` directly in the layer group;
    style "new": ``block1_conv1/kernel:0``, which h5py stores as a nested group ``block1_conv1/block1_conv1``.
    """
    include_top = "fc1" in weights
    names = [n for n in (layer_names or keras_layer_names(include_top)) if n not in skip]
    with h5py.File(path, "w") as f:
        if model_weights:
            f.attrs["keras_version"] = b"2.2.4"
            f.attrs["backend"] = b"tensorflow"
            f.attrs["model_config"] = b'{"class_name": "Model", "config": {"name": "vgg19"}}'
            root = f.create_group("model_weights")
        else:
            root = f
        root.attrs["layer_names"] = [n.encode("utf8") for n in names]
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.2.4" if style == "new" else b"1.1.0"
        for name in names:
            g = root.create_group(name)
            if name not in weights:
                g.attrs["weight_names"] = []  # what Keras writes for a layer without weights
                continue
            if style == "new":
                w_names = [f"{name}/kernel:0", f"{name}/bias:0"]
            else:
                w_names = [f"{name}_W_1:0", f"{name}_b_1:0"]
            g.attrs["weight_names"] = [n.encode("utf8") for n in w_names]
            for w_name, value in zip(w_names, weights[name]):
                g.create_dataset(w_name, data=value)
    return path


def torchvision_state_dict(include_top, seed=0):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(seed)
    keys = torchvision_keys()
    state = {}
    for name, (k_shape, b_shape) in vgg19_shapes(include_top).items():
        state[f"{keys[name]}.weight"] = torch.randn(k_shape, generator=gen)
        state[f"{keys[name]}.bias"] = torch.randn(b_shape, generator=gen)
    return state


def assert_same(actual, expected, name=""):
    """Exact equality, with a short message (np.testing's version is slow on 100M-element arrays)."""
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    assert np.array_equal(actual, expected), f"{name}: values differ"


def leftovers(directory):
    """Temporary/partial files left in a folder (anything starting with '.' or ending with '.part')."""
    return [p.name for p in Path(directory).iterdir() if p.name.startswith(".") or p.name.endswith(".part")]


@pytest.fixture
def big_files(tmp_path):
    """tmp_path, emptied after the test: pytest keeps the last runs' folders, and these files are ~550 MB."""
    yield tmp_path
    for p in tmp_path.iterdir():
        if p.is_file():
            p.unlink()


@pytest.fixture(scope="module")
def notop():
    return keras_weights(include_top=False)


@pytest.fixture(scope="module")
def keras_notop_file(tmp_path_factory, notop):
    return write_keras_h5(tmp_path_factory.mktemp("keras") / "notop.h5", notop, style="new")


@pytest.fixture(autouse=True)
def isolated_weights_dir(tmp_path, monkeypatch):
    """Never read or write the real weight folders from tests."""
    monkeypatch.setenv("MINIDL_WEIGHTS", str(tmp_path / "weights_home"))


def check_converted_convs(layers, keras):
    for name in vgg19_shapes(False):
        kernel, bias = layers[name]
        assert_same(kernel, keras[name][0].transpose(3, 2, 0, 1), name)
        assert_same(bias, keras[name][1], name)
        assert kernel.dtype == np.float32 and kernel.flags.c_contiguous


# --- Keras ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("style, model_weights", [("new", False), ("old", False), ("new", True), ("old", True)])
def test_convert_keras_notop_all_layouts(tmp_path, notop, style, model_weights):
    src = write_keras_h5(tmp_path / "src.h5", notop, style=style, model_weights=model_weights)
    assert detect_format(src) == "keras"
    dest = convert(src, tmp_path / "out" / "vgg19.h5")
    layers, attrs = read_vgg19(dest)
    assert list(layers) == list(vgg19_shapes(False))
    check_converted_convs(layers, notop)
    assert attrs["arch"] == "vgg19" and attrs["format_version"] == 1 and not attrs["include_top"]
    assert attrs["preprocessing"] == "caffe"  # Keras's weights expect BGR, 0-255, mean subtracted
    assert "CC BY 4.0" in attrs["license"] and "src.h5" in attrs["source"]
    assert leftovers(tmp_path / "out") == []
    with h5py.File(dest, "r") as f:  # the documented layout, literally
        assert f["block1_conv1/kernel"].shape == (64, 3, 3, 3) and f["block1_conv1/kernel"].dtype == np.float32
        assert f["block5_conv4/bias"].shape == (512,)


def test_keras_first_layer_keeps_bgr_order(tmp_path, keras_notop_file, notop):
    """Input channel i of the converted kernel is Keras's input channel i (BGR): no silent flip."""
    layers, attrs = read_vgg19(convert(keras_notop_file, tmp_path / "v.h5"))
    assert_same(layers["block1_conv1"][0][:, 0], notop["block1_conv1"][0][:, :, 0, :].transpose(2, 0, 1))
    assert PREPROCESSING[attrs["preprocessing"]]["channels"] == "BGR"


def test_keras_attributes_split_in_chunks(tmp_path, notop):
    """Keras splits long attributes into layer_names0, layer_names1, ... (HDF5 header limit)."""
    src = write_keras_h5(tmp_path / "src.h5", notop)
    with h5py.File(src, "a") as f:
        names = list(f.attrs["layer_names"])
        del f.attrs["layer_names"]
        f.attrs["layer_names0"], f.attrs["layer_names1"] = names[:10], names[10:]
    check_converted_convs(read_vgg19(convert(src, tmp_path / "v.h5"))[0], notop)


def test_fc1_permutation_matches_keras_flatten():
    """minidl's fc1 on the NCHW flatten computes exactly Keras's fc1 on the channels-last flatten."""
    rng = np.random.default_rng(1)
    n_out = 8  # the permutation only touches the 25088 input rows; a few outputs test it fully
    keras_kernel = rng.standard_normal((7 * 7 * 512, n_out)).astype(np.float32)
    w = keras_flatten_kernel_to_chw(keras_kernel, (512, 7, 7))
    assert w.shape == (n_out, 25088)
    a = rng.standard_normal((512, 7, 7))  # block5_pool of one image, (C, H, W)
    y_keras = a.transpose(1, 2, 0).reshape(-1) @ keras_kernel  # Flatten of (H, W, C)
    y_minidl = w @ a.reshape(-1)  # Flatten of (C, H, W)
    np.testing.assert_allclose(y_minidl, y_keras, rtol=1e-4, atol=1e-3)
    for c, h, x in [(0, 0, 0), (511, 6, 6), (3, 2, 5), (200, 6, 0)]:
        assert np.array_equal(w[:, c * 49 + h * 7 + x], keras_kernel[(h * 7 + x) * 512 + c])


@pytest.fixture(scope="module")
def keras_top_file(tmp_path_factory):
    """The with-top Keras file (~550 MB of random float32), written once for the module."""
    weights = keras_weights(include_top=True, seed=2)
    path = write_keras_h5(tmp_path_factory.mktemp("keras_top") / "top.h5", weights, style="old")
    yield path, weights
    path.unlink()


def test_convert_keras_with_top(big_files, keras_top_file):
    tmp_path = big_files
    src, keras = keras_top_file
    layers, attrs = read_vgg19(convert(src, tmp_path / "top.h5"), include_top=True)
    assert attrs["include_top"] and list(layers) == list(vgg19_shapes(True))
    check_converted_convs(layers, keras)
    assert_same(layers["fc2"][0], keras["fc2"][0].T)
    assert_same(layers["predictions"][0], keras["predictions"][0].T)
    assert layers["predictions"][0].shape == (1000, 4096)
    for name in TOP:
        assert_same(layers[name][1], keras[name][1])
    # fc1: rows regrouped from (h, w, c) to (c, h, w); checked on the real shapes through one activation
    a = np.random.default_rng(3).standard_normal((512, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(layers["fc1"][0] @ a.reshape(-1), a.transpose(1, 2, 0).reshape(-1) @ keras["fc1"][0],
                               rtol=1e-3, atol=1e-2)
    # the notop part of a top file, and --no-top
    notop_layers, _ = read_vgg19(tmp_path / "top.h5", include_top=False)
    assert list(notop_layers) == list(vgg19_shapes(False))
    dropped = convert(src, tmp_path / "dropped.h5", include_top=False)
    assert not read_vgg19(dropped)[1]["include_top"]


def test_keras_missing_layer_names_layer_and_file(tmp_path, notop):
    src = write_keras_h5(tmp_path / "src.h5", notop, skip=("block3_conv2",))
    with pytest.raises(WeightsFormatError, match=r"src\.h5.*block3_conv2"):
        convert(src, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists() and leftovers(tmp_path) == []


def test_keras_layer_listed_but_group_missing(tmp_path, notop):
    src = write_keras_h5(tmp_path / "src.h5", notop)
    with h5py.File(src, "a") as f:
        del f["block4_conv1"]
    with pytest.raises(WeightsFormatError, match=r"src\.h5.*'block4_conv1'.*no group"):
        convert(src, tmp_path / "out.h5")


def test_keras_wrong_shape_names_dataset(tmp_path, notop):
    bad = dict(notop)
    bad["block2_conv1"] = (np.zeros((3, 3, 64, 100), np.float32), np.zeros(100, np.float32))
    src = write_keras_h5(tmp_path / "src.h5", bad)
    message = r"src\.h5.*block2_conv1.*/block2_conv1/block2_conv1/kernel:0.*\(3, 3, 64, 128\)"
    with pytest.raises(WeightsFormatError, match=message):
        convert(src, tmp_path / "out.h5")


def test_keras_channels_first_file_gets_a_hint(tmp_path, notop):
    bad = dict(notop)
    bad["block1_conv1"] = (notop["block1_conv1"][0].transpose(3, 2, 0, 1).copy(), notop["block1_conv1"][1])
    src = write_keras_h5(tmp_path / "src.h5", bad, style="old")
    with pytest.raises(WeightsFormatError, match="th_dim_ordering"):
        convert(src, tmp_path / "out.h5")


def test_keras_missing_dataset(tmp_path, notop):
    src = write_keras_h5(tmp_path / "src.h5", notop, style="old")
    with h5py.File(src, "a") as f:
        del f["block5_conv4/block5_conv4_b_1:0"]
    with pytest.raises(WeightsFormatError, match=r"block5_conv4/block5_conv4_b_1:0.*missing"):
        convert(src, tmp_path / "out.h5")


def test_not_a_vgg19_keras_file(tmp_path, notop):
    extra = dict(notop, block6_conv1=(np.zeros((3, 3, 512, 512), np.float32), np.zeros(512, np.float32)))
    src = write_keras_h5(tmp_path / "src.h5", extra, layer_names=keras_layer_names(False) + ["block6_conv1"])
    with pytest.raises(WeightsFormatError, match="unexpected layer.*block6_conv1"):
        convert(src, tmp_path / "out.h5")


def test_unknown_formats(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(WeightsFormatError, match=r"notes\.txt: unknown weights format"):
        convert(text, tmp_path / "out.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(WeightsFormatError, match=r"other\.h5.*neither a Keras"):
        convert(other, tmp_path / "out.h5")
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        convert(tmp_path / "missing.h5", tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_converting_a_minidl_file_is_refused(tmp_path, keras_notop_file):
    dest = convert(keras_notop_file, tmp_path / "v.h5")
    assert detect_format(dest) == "minidl"
    with pytest.raises(WeightsFormatError, match="already a minidl weight file"):
        convert(dest, tmp_path / "again.h5")


def test_failed_write_leaves_nothing_and_keeps_old_file(tmp_path, keras_notop_file, monkeypatch):
    dest = tmp_path / "vgg19.h5"
    dest.write_bytes(b"previous content")
    calls = {"n": 0}
    original = h5py.Group.create_dataset

    def failing_create_dataset(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 10:
            raise OSError("disk full (simulated)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing_create_dataset)
    with pytest.raises(OSError, match="disk full"):
        convert(keras_notop_file, dest)
    assert dest.read_bytes() == b"previous content"
    assert leftovers(tmp_path) == []


# --- torchvision ------------------------------------------------------------------------------------

@pytest.mark.torch
def test_convert_torchvision_with_top(big_files):
    torch = pytest.importorskip("torch")
    tmp_path = big_files
    state = torchvision_state_dict(include_top=True)
    assert "features.34.weight" in state and "classifier.6.bias" in state
    src = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, src)
    assert detect_format(src) == "torchvision"
    layers, attrs = read_vgg19(convert(src, tmp_path / "out.h5"), include_top=True)
    assert attrs["preprocessing"] == "torch" and "vgg19-dcbb9e9d.pth" in attrs["source"]
    for name, prefix in torchvision_keys().items():
        assert_same(layers[name][0], state[f"{prefix}.weight"].numpy(), name)
        assert_same(layers[name][1], state[f"{prefix}.bias"].numpy(), name)


@pytest.mark.torch
def test_torchvision_errors(tmp_path):
    torch = pytest.importorskip("torch")
    state = torchvision_state_dict(include_top=False)
    del state["features.21.bias"]
    torch.save(state, tmp_path / "a.pth")
    with pytest.raises(WeightsFormatError, match=r"a\.pth.*'features\.21\.bias'.*block4_conv2"):
        convert(tmp_path / "a.pth", tmp_path / "out.h5")

    state = torchvision_state_dict(include_top=False)
    state["features.2.weight"] = torch.zeros(64, 64, 5, 5)
    torch.save(state, tmp_path / "b.pth")
    with pytest.raises(WeightsFormatError, match=r"b\.pth.*'features\.2\.weight'.*block1_conv2.*\(64, 64, 5, 5\)"):
        convert(tmp_path / "b.pth", tmp_path / "out.h5")

    state = torchvision_state_dict(include_top=False)
    state["features.1.running_mean"] = torch.zeros(64)
    torch.save(state, tmp_path / "c.pth")
    with pytest.raises(WeightsFormatError, match="vgg19_bn"):
        convert(tmp_path / "c.pth", tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists() and leftovers(tmp_path) == []


def test_torch_missing_gives_a_clear_message(tmp_path, monkeypatch):
    import builtins

    src = tmp_path / "vgg19.pth"
    src.write_bytes(b"PK\x03\x04 not really a zip")
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ImportError, match=r"vgg19\.pth.*needs PyTorch.*pip install torch"):
        convert(src, tmp_path / "out.h5")


# --- minidl's own format ----------------------------------------------------------------------------

def test_read_checks_every_layer(tmp_path, keras_notop_file):
    good = convert(keras_notop_file, tmp_path / "good.h5")
    with pytest.raises(WeightsFormatError, match=r"good\.h5.*no classifier top.*--top"):
        read_vgg19(good, include_top=True)

    bad = tmp_path / "bad.h5"
    bad.write_bytes(good.read_bytes())
    with h5py.File(bad, "a") as f:
        del f["block3_conv3"]
    with pytest.raises(WeightsFormatError, match=r"bad\.h5: missing layer.*block3_conv3"):
        read_vgg19(bad)

    bad.write_bytes(good.read_bytes())
    with h5py.File(bad, "a") as f:
        del f["block2_conv2/kernel"]
        f["block2_conv2/kernel"] = np.zeros((128, 128, 1, 1), np.float32)
    with pytest.raises(WeightsFormatError, match=r"bad\.h5: layer 'block2_conv2' kernel has shape \(128, 128, 1, 1\)"):
        read_vgg19(bad)

    bad.write_bytes(good.read_bytes())
    with h5py.File(bad, "a") as f:
        f.attrs["arch"] = "resnet50"
    with pytest.raises(WeightsFormatError, match="resnet50"):
        read_vgg19(bad)
    with pytest.raises(WeightsFormatError, match="not a minidl weight file.*convert"):
        read_vgg19(keras_notop_file)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        read_vgg19(tmp_path / "nope.h5")


def test_write_refuses_incomplete_layers(tmp_path):
    layers = {n: (np.zeros(k, np.float32), np.zeros(b, np.float32)) for n, (k, b) in vgg19_shapes(False).items()}
    del layers["block1_conv2"]
    with pytest.raises(WeightsFormatError, match="block1_conv2"):
        write_vgg19(tmp_path / "w.h5", layers, source="test", preprocessing="caffe", license="none")
    assert list(tmp_path.iterdir()) == []


# --- search path ------------------------------------------------------------------------------------

def test_search_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_WEIGHTS", str(tmp_path / "w"))
    assert paths.weights_dir() == tmp_path / "w" and paths.search_dirs() == [tmp_path / "w"]
    with pytest.raises(FileNotFoundError, match=r"vgg19_imagenet_notop\.h5.*looked in.*w.*fetch vgg19"):
        paths.find_weights("vgg19_imagenet_notop.h5", hint="Run: python -m minidl.weights fetch vgg19")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "b.h5").write_bytes(b"")
    assert paths.find_weights(["a.h5", "b.h5"]) == tmp_path / "w" / "b.h5"

    monkeypatch.delenv("MINIDL_WEIGHTS")
    monkeypatch.setattr(paths, "checkout_dir", lambda: tmp_path / "repo_weights")
    monkeypatch.setattr(paths, "cache_dir", lambda: tmp_path / "cache")
    assert paths.weights_dir() == tmp_path / "cache"  # no checkout folder
    (tmp_path / "repo_weights").mkdir()
    assert paths.weights_dir() == tmp_path / "repo_weights"
    assert paths.search_dirs() == [tmp_path / "repo_weights", tmp_path / "cache"]


def test_checkout_dir_is_the_repository_weights_folder():
    assert paths.checkout_dir() == Path(__file__).resolve().parents[1] / "weights"


# --- fetch against a local server -------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # URL path -> bytes
    truncate = False  # announce the full length, send half, close

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.truncate else body)
        if self.truncate:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"files": {}, "truncate": False})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}/vgg19/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="module")
def keras_notop_bytes(keras_notop_file):
    return keras_notop_file.read_bytes(), file_digest(keras_notop_file, "md5")


def use_md5(monkeypatch, md5):
    remote, _, local = fetch_mod.VGG19_FILES[False]
    monkeypatch.setitem(fetch_mod.VGG19_FILES, False, (remote, md5, local))


def test_fetch_downloads_verifies_and_converts(tmp_path, server, keras_notop_bytes, monkeypatch, notop, capsys):
    handler, base = server
    body, md5 = keras_notop_bytes
    handler.files["/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"] = body
    use_md5(monkeypatch, md5)
    dest = fetch_mod.fetch("vgg19", base_url=base)  # default destination: $MINIDL_WEIGHTS
    assert dest == Path(os.environ["MINIDL_WEIGHTS"]) / "vgg19_imagenet_notop.h5"
    assert paths.find_weights("vgg19_imagenet_notop.h5") == dest
    check_converted_convs(read_vgg19(dest)[0], notop)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["vgg19_imagenet_notop.h5"]  # raw file removed
    assert "downloading" in capsys.readouterr().err
    # already there: no second download
    handler.files.clear()
    assert fetch_mod.fetch("vgg19", base_url=base) == dest


def test_fetch_checksum_mismatch(tmp_path, server, keras_notop_bytes):
    handler, base = server
    handler.files["/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"] = keras_notop_bytes[0]
    with pytest.raises(DownloadError, match=r"md5 checksum mismatch.*expected 253f8cb515780f3b799900260a226db6"):
        fetch_mod.fetch("vgg19", dest_dir=tmp_path / "w", base_url=base)
    assert list((tmp_path / "w").iterdir()) == []


def test_fetch_interrupted_transfer(tmp_path, server, monkeypatch):
    handler, base = server
    handler.truncate = True
    body = b"x" * 100_000
    handler.files["/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"] = body
    use_md5(monkeypatch, __import__("hashlib").md5(body).hexdigest())
    with pytest.raises(DownloadError, match="127.0.0.1.*(interrupted|IncompleteRead|incomplete)"):
        fetch_mod.fetch("vgg19", dest_dir=tmp_path / "w", base_url=base)
    assert list((tmp_path / "w").iterdir()) == []


def test_fetch_cli(tmp_path, server, keras_notop_bytes, monkeypatch, capsys):
    handler, base = server
    assert cli.main(["fetch", "vgg19", "--dir", str(tmp_path / "w"), "--base-url", base]) == 1
    assert "error:" in capsys.readouterr().err and list((tmp_path / "w").iterdir()) == []  # 404

    handler.files["/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"] = keras_notop_bytes[0]
    use_md5(monkeypatch, keras_notop_bytes[1])
    assert cli.main(["fetch", "vgg19", "--dir", str(tmp_path / "w"), "--base-url", base]) == 0
    assert (tmp_path / "w" / "vgg19_imagenet_notop.h5").is_file()
    assert cli.main(["info", str(tmp_path / "w" / "vgg19_imagenet_notop.h5")]) == 0
    out = capsys.readouterr().out
    assert "preprocessing: caffe" in out and "block5_conv4" in out


def test_convert_cli(tmp_path, keras_notop_file, capsys):
    assert cli.main(["convert", str(keras_notop_file), str(tmp_path / "v.h5"), "--no-top"]) == 0
    assert (tmp_path / "v.h5").is_file()
    assert cli.main(["convert", str(keras_notop_file), str(tmp_path / "t.h5"), "--top"]) == 1
    assert "no classifier top" in capsys.readouterr().err
    assert not (tmp_path / "t.h5").exists()
    assert cli.main(["where"]) == 0


# --- what the command line says when it cannot help --------------------------------------------------------

def run_cli(*args, cwd, env=None):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {}))
    return subprocess.run([sys.executable, "-m", "minidl.weights", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def one_line_error(out, *fragments):
    assert out.returncode == 1 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def closed_port():
    import socket

    with socket.socket() as s:  # bound then closed: nothing listens there, the connection is refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_without_network_names_the_ways_forward(tmp_path):
    out = run_cli("fetch", "vgg19", "--dir", tmp_path / "w", "--base-url", f"http://127.0.0.1:{closed_port()}/",
                  cwd=tmp_path, env={"MINIDL_WEIGHTS": str(tmp_path / "home")})
    one_line_error(out, "could not download", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
                   "python -m minidl.weights convert", "--base-url", "--weights random")
    assert not (tmp_path / "w").exists() or list((tmp_path / "w").iterdir()) == []


def test_convert_on_a_minidl_model_file_says_what_it_is(tmp_path):
    from minidl import nn

    nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).save(tmp_path / "model.h5")
    out = run_cli("convert", "model.h5", "out.h5", cwd=tmp_path)
    one_line_error(out, "model.h5: a minidl model file (a Sequential saved by model.save), not VGG19 weights",
                   "minidl.nn.load_model")
    assert not (tmp_path / "out.h5").exists()


def test_an_old_torch_is_refused_rather_than_unpickling(tmp_path, monkeypatch):
    """torch < 1.13 has no torch.load(weights_only=True): minidl must not fall back to a plain torch.load."""
    import sys
    import types

    calls = []
    fake = types.ModuleType("torch")
    fake.__version__ = "1.12.1+cpu"

    def load(path, map_location=None, **kwargs):
        calls.append(kwargs)
        if "weights_only" in kwargs:
            raise TypeError("load() got an unexpected keyword argument 'weights_only'")
        return {}

    fake.load = load
    monkeypatch.setitem(sys.modules, "torch", fake)
    src = tmp_path / "vgg19.pth"
    src.write_bytes(b"PK\x03\x04 a zip, as torch.save writes")
    with pytest.raises(WeightsFormatError, match=r"vgg19\.pth: PyTorch 1\.12\.1\+cpu cannot read a \.pth file safely"
                                                 r".*install PyTorch 1\.13 or newer"):
        convert(src, tmp_path / "out.h5")
    assert calls == [] and not (tmp_path / "out.h5").exists()
