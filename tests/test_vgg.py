"""VGG19: architecture and names, seeded init, extract (and that it stops early), pre/deprocessing,
loading weight files (round trip, search path, errors), and a cross-check against the same network in PyTorch."""
import numpy as np
import pytest

from minidl import nn
from minidl.models import vgg19, vgg19_layer_names
from minidl.autograd import Tensor
from minidl.weights.convert import TORCHVISION_FEATURES, torchvision_keys
from minidl.weights.format import WeightsFormatError, read_vgg19, vgg19_shapes, write_vgg19

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)


@pytest.fixture(autouse=True)
def isolated_weights_dir(tmp_path, monkeypatch):
    """Tests never see (or write) the real weight folders."""
    monkeypatch.setenv("MINIDL_WEIGHTS", str(tmp_path / "weights_home"))


@pytest.fixture(scope="module")
def model():
    return vgg19(seed=0)


def random_layers(include_top=False, seed=0):
    """{layer: (kernel, bias)} in minidl's layout, small random values (uniform in ±0.01 and ±1)."""
    rng = np.random.default_rng(seed)
    layers = {}
    for name, (k_shape, b_shape) in vgg19_shapes(include_top).items():
        kernel = rng.random(k_shape, dtype=np.float32)  # in place from here: fc1 alone is 400 MB
        kernel -= 0.5
        kernel *= 0.02
        layers[name] = (kernel, rng.random(b_shape, dtype=np.float32) * 2 - 1)
    return layers


def write_file(path, include_top=False, preprocessing="torch", seed=0):
    layers = random_layers(include_top, seed)
    write_vgg19(path, layers, source="test", preprocessing=preprocessing, license="test only")
    return path, layers


def images(shape=(1, 3, 64, 64), seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


# --- architecture -------------------------------------------------------------------------------------

def test_layer_names_and_shapes(model):
    expected = ["block1_conv1", "block1_conv2", "block1_pool", "block2_conv1", "block2_conv2", "block2_pool"]
    expected += [f"block3_conv{i}" for i in range(1, 5)] + ["block3_pool"]
    expected += [f"block4_conv{i}" for i in range(1, 5)] + ["block4_pool"]
    expected += [f"block5_conv{i}" for i in range(1, 5)] + ["block5_pool"]
    assert list(model.layer_names) == expected == vgg19_layer_names()
    for name, (k_shape, b_shape) in vgg19_shapes().items():
        layer = getattr(model, name)
        assert isinstance(layer, nn.Conv2d) and layer.padding == (1, 1) and layer.stride == (1, 1)
        assert layer.weight.shape == k_shape and layer.bias.shape == b_shape
    assert all(isinstance(getattr(model, f"block{b}_pool"), nn.MaxPool2d) for b in range(1, 6))
    assert isinstance(vgg19(pooling="avg").block3_pool, nn.AvgPool2d)
    names = [n for n, _ in model.named_parameters()]
    assert len(names) == 32 and names[:2] == ["block1_conv1.weight", "block1_conv1.bias"]
    assert sum(p.numel() for p in model.parameters()) == 20_024_384  # Keras's VGG19(include_top=False)
    assert model.preprocessing == "caffe" and model.weights_file is None


def test_activation_shapes(model):
    out = model.extract(model.preprocess(images((2, 3, 32, 48))), ["block1_conv1", "block3_conv4", "block5_pool"])
    assert out["block1_conv1"].shape == (2, 64, 32, 48)
    assert out["block3_conv4"].shape == (2, 256, 8, 12)
    assert out["block5_pool"].shape == (2, 512, 1, 1)
    assert (out["block1_conv1"].data >= 0).all() and (out["block3_conv4"].data >= 0).all()  # after the ReLU
    np.testing.assert_array_equal(model(model.preprocess(images((2, 3, 32, 48)))).data, out["block5_pool"].data)


def test_seeded_glorot_uniform_init_as_keras():
    a, b, c = vgg19(seed=1), vgg19(seed=1), vgg19(seed=2)
    np.testing.assert_array_equal(a.block4_conv2.weight.data, b.block4_conv2.weight.data)
    assert not np.array_equal(a.block4_conv2.weight.data, c.block4_conv2.weight.data)
    w = a.block3_conv1.weight.data  # (256, 128, 3, 3): fan_in 128·9, fan_out 256·9
    limit = np.sqrt(6 / (128 * 9 + 256 * 9))
    assert w.dtype == np.float32 and w.shape == (256, 128, 3, 3)
    assert -limit <= w.min() < -0.99 * limit and 0.99 * limit < w.max() <= limit  # uniform on [-a, a]
    assert abs(w.std() / (limit / np.sqrt(3)) - 1) < 0.02 and abs(w.mean()) < 1e-3
    assert not a.block3_conv1.bias.data.any() and not a.block1_conv1.bias.data.any()


def test_invalid_arguments():
    with pytest.raises(ValueError, match="pooling must be one of.*'median'"):
        vgg19(pooling="median")
    with pytest.raises(TypeError, match="weights must be None, 'imagenet' or a path"):
        vgg19(weights=3)
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        vgg19(weights="nowhere.h5")


# --- extract ------------------------------------------------------------------------------------------

def spy_on_layers(model):
    """Record the name of every layer that runs (wrapping each layer's forward on this instance)."""
    calls = []
    for name in model.layer_names:
        layer = getattr(model, name)
        layer.forward = (lambda f, n: lambda x: (calls.append(n), f(x))[1])(layer.forward, name)
    return calls


def test_extract_stops_at_the_deepest_requested_layer():
    model = vgg19(seed=0)
    calls = spy_on_layers(model)
    out = model.extract(model.preprocess(images((1, 3, 16, 16))), ["block2_conv1", "block1_conv2"])
    assert calls == ["block1_conv1", "block1_conv2", "block1_pool", "block2_conv1"]
    assert list(out) == ["block2_conv1", "block1_conv2"]  # in the order asked for
    calls.clear()
    assert list(model.extract(images((1, 3, 16, 16)), "block1_conv1")) == ["block1_conv1"]
    assert calls == ["block1_conv1"]
    calls.clear()
    model(images((1, 3, 32, 32)))
    assert calls == list(model.layer_names)


def test_extract_errors(model):
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['relu4_2'\]; valid names: block1_conv1.*block5_pool"):
        model.extract(images(), ["block1_conv1", "relu4_2"])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(1, 1, 8, 8\)"):
        model.extract(np.zeros((1, 1, 8, 8), np.float32), "block1_conv1")
    with pytest.raises(ValueError, match=r"preprocess.*got \(3, 8, 8\)"):
        model.preprocess(np.zeros((3, 8, 8), np.float32))


# --- preprocessing ------------------------------------------------------------------------------------

def test_preprocess_caffe_values(model):
    rgb = np.zeros((1, 3, 2, 2), np.float32)
    rgb[0, :, 0, 0] = (1.0, 0.5, 0.0)  # red = 1, green = 0.5, blue = 0
    x = model.preprocess(rgb)
    assert isinstance(x, np.ndarray) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], [0 - 103.939, 127.5 - 116.779, 255 - 123.68], rtol=1e-6)  # B, G, R
    np.testing.assert_allclose(x[0, :, 1, 1], -CAFFE_MEAN_BGR, rtol=1e-6)
    np.testing.assert_allclose(model.deprocess(x), rgb, atol=1e-6)


def test_preprocess_torch_values(tmp_path):
    path, _ = write_file(tmp_path / "w.h5", preprocessing="torch")
    model = vgg19(weights=path)
    assert model.preprocessing == "torch"
    rgb = images((2, 3, 5, 5))
    expected = (rgb - TORCH_MEAN.reshape(1, 3, 1, 1)) / TORCH_STD.reshape(1, 3, 1, 1)
    np.testing.assert_allclose(model.preprocess(rgb), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.deprocess(model.preprocess(rgb)), rgb, atol=1e-6)


def test_preprocess_on_tensors_lets_gradients_reach_the_pixels(model):
    rgb = Tensor(images((1, 3, 4, 4)), requires_grad=True)
    x = model.preprocess(rgb)
    assert isinstance(x, Tensor) and x.requires_grad
    w = np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 3, 1, 1)  # weights on the B, G, R inputs
    (x * w).sum().backward()
    # input channel 0 of the network is blue = rgb channel 2, scaled by 255
    np.testing.assert_allclose(rgb.grad[0, :, 0, 0], [255 * 3, 255 * 2, 255 * 1])
    back = model.deprocess(x)
    assert isinstance(back, Tensor)
    np.testing.assert_allclose(back.data, rgb.data, atol=1e-5)


# --- loading weights ----------------------------------------------------------------------------------

def test_load_round_trip(tmp_path):
    path, layers = write_file(tmp_path / "mine.h5", preprocessing="torch")
    model = vgg19(weights=path, pooling="avg")
    for name, (kernel, bias) in layers.items():
        np.testing.assert_array_equal(getattr(model, name).weight.data, kernel)
        np.testing.assert_array_equal(getattr(model, name).bias.data, bias)
    assert model.weights_file == path and model.preprocessing == "torch" and "mine.h5" in repr(model)
    # and back: the parameters written by write_vgg19 from the model's own arrays read back identical
    out = write_vgg19(tmp_path / "again.h5", {n: (getattr(model, n).weight.data, getattr(model, n).bias.data)
                                              for n in layers}, source="x", preprocessing="torch", license="x")
    again, _ = read_vgg19(out)
    assert all(np.array_equal(again[n][0], layers[n][0]) for n in layers)


def test_imagenet_uses_the_search_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_WEIGHTS", str(tmp_path / "w"))
    with pytest.raises(FileNotFoundError) as info:
        vgg19(weights="imagenet")
    message = str(info.value)
    assert "vgg19_imagenet_notop.h5" in message and "python -m minidl.weights fetch vgg19" in message
    assert "weights=None" in message and str(tmp_path / "w") in message
    with pytest.raises(FileNotFoundError, match="fetch vgg19 --top"):
        vgg19(weights="imagenet", include_top=True)
    path, layers = write_file(tmp_path / "w" / "vgg19_imagenet_notop.h5", preprocessing="caffe")
    model = vgg19(weights="imagenet")
    assert model.weights_file == path and model.preprocessing == "caffe"
    np.testing.assert_array_equal(model.block5_conv4.weight.data, layers["block5_conv4"][0])


def test_include_top_with_a_notop_file(tmp_path):
    path, _ = write_file(tmp_path / "notop.h5")
    with pytest.raises(WeightsFormatError, match=r"notop\.h5.*no classifier top.*include_top=False"):
        vgg19(weights=path, include_top=True)  # checked before the (big) model is built


def test_bad_file_names_layer_and_file_and_changes_nothing(tmp_path):
    import h5py

    path, _ = write_file(tmp_path / "bad.h5")
    with h5py.File(path, "a") as f:
        del f["block4_conv3/kernel"]
        f["block4_conv3/kernel"] = np.zeros((512, 256, 3, 3), np.float32)
    model = vgg19(seed=0)
    before = model.block1_conv1.weight.data.copy()
    with pytest.raises(WeightsFormatError, match=r"bad\.h5: layer 'block4_conv3' kernel has shape \(512, 256, 3, 3\)"):
        model.load_weights(path)
    np.testing.assert_array_equal(model.block1_conv1.weight.data, before)  # not half-loaded
    with h5py.File(path, "a") as f:
        del f["block4_conv3"]
    with pytest.raises(WeightsFormatError, match=r"bad\.h5: missing layer.*block4_conv3"):
        vgg19(weights=path)
    with h5py.File(path, "a") as f:
        f.create_group("block4_conv3")
        f["block4_conv3/kernel"] = np.zeros((512, 512, 3, 3), np.float32)
        f["block4_conv3/bias"] = np.zeros(512, np.float32)
        f.create_group("block6_conv1")
        f["block6_conv1/kernel"] = np.zeros((1,), np.float32)
        f["block6_conv1/bias"] = np.zeros((1,), np.float32)
    with pytest.raises(WeightsFormatError, match=r"bad\.h5: unexpected layer.*block6_conv1"):
        vgg19(weights=path)


# --- the same network in PyTorch ----------------------------------------------------------------------

def torch_vgg19_features(model, torch, pooling):
    """torchvision's vgg19 ``features`` (same Sequential indices), loaded with ``model``'s weights."""
    tnn = torch.nn
    layers, in_channels = [], 3
    for widths in ([64] * 2, [128] * 2, [256] * 4, [512] * 4, [512] * 4):
        for width in widths:
            layers += [tnn.Conv2d(in_channels, width, 3, padding=1), tnn.ReLU()]
            in_channels = width
        layers.append(tnn.MaxPool2d(2) if pooling == "max" else tnn.AvgPool2d(2))
    features = tnn.Sequential(*layers)
    keys = torchvision_keys()
    state = {}
    for name in vgg19_shapes(False):
        state[f"{keys[name]}.weight"] = torch.from_numpy(getattr(model, name).weight.data.copy())
        state[f"{keys[name]}.bias"] = torch.from_numpy(getattr(model, name).bias.data.copy())
    features.load_state_dict({k[len("features."):]: v for k, v in state.items()})
    return features


def torch_index(name):
    """Index in torchvision's ``features`` whose output is Keras's layer ``name`` (a conv: its ReLU)."""
    convs = list(vgg19_shapes(False))
    if name in convs:
        return TORCHVISION_FEATURES[convs.index(name)] + 1
    block = int(name[len("block")])
    return TORCHVISION_FEATURES[convs.index(f"block{block}_conv{2 if block <= 2 else 4}")] + 2


def assert_close(actual, expected, name, rtol=2e-4):
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=name)


@pytest.mark.torch
@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_matches_pytorch_activations_and_pixel_gradient(pooling):
    torch = pytest.importorskip("torch")
    model = vgg19(seed=3, pooling=pooling)
    features = torch_vgg19_features(model, torch, pooling)
    rgb = images((1, 3, 64, 64), seed=4)
    names = ["block1_conv1", "block3_conv1", "block5_conv2", "block5_pool"]
    projection = np.random.default_rng(5).standard_normal((1, 512, 4, 4)).astype(np.float32)

    # minidl: pixels in [0, 1] -> preprocess (caffe) -> network; gradient of <block5_conv2, projection>
    x = Tensor(rgb, requires_grad=True)
    acts = model.extract(model.preprocess(x), names)
    (acts["block5_conv2"] * projection).sum().backward()

    # PyTorch: the same preprocessing written out, then features[:i + 1] for each layer
    xt = torch.from_numpy(rgb.copy()).requires_grad_(True)
    h = xt[:, [2, 1, 0]] * 255 - torch.from_numpy(CAFFE_MEAN_BGR).reshape(1, 3, 1, 1)
    ref, last = {}, 0
    for name in names:
        for layer in features[last: torch_index(name) + 1]:
            h = layer(h)
        last = torch_index(name) + 1
        ref[name] = h
    (ref["block5_conv2"] * torch.from_numpy(projection)).sum().backward()

    for name in names:
        assert_close(acts[name].data, ref[name].detach().numpy(), name)
    assert_close(x.grad, xt.grad.numpy(), "d<block5_conv2, projection>/d pixels", rtol=1e-3)


@pytest.mark.torch
def test_with_top_loads_and_matches_pytorch(tmp_path):
    """The whole network with the classifier, loaded from a file, against torchvision's layout in PyTorch."""
    torch = pytest.importorskip("torch")
    path, layers = write_file(tmp_path / "top.h5", include_top=True, preprocessing="torch", seed=6)
    model = vgg19(weights=path, include_top=True)
    path.unlink()  # 550 MB; pytest keeps the temporary folders of the last runs
    assert list(model.layer_names[-4:]) == ["flatten", "fc1", "fc2", "predictions"]
    assert model.fc1.weight.shape == (4096, 25088) and model.predictions.weight.shape == (1000, 4096)
    for name in ("fc1", "fc2", "predictions", "block1_conv1"):
        assert np.array_equal(getattr(model, name).weight.data, layers[name][0]), name
    del layers  # from here on the model's own arrays serve PyTorch too (shared, not copied)
    with pytest.raises(ValueError, match=r"top needs block5_pool of shape \(512, 7, 7\).*got \(512, 2, 2\)"):
        model(images((1, 3, 64, 64)))

    rgb = images((1, 3, 224, 224), seed=7)
    logits = model(model.preprocess(rgb)).data
    assert logits.shape == (1, 1000)

    features = torch_vgg19_features(model, torch, "max")
    tf = torch.nn.functional

    def dense(name, h):
        return tf.linear(h, torch.from_numpy(getattr(model, name).weight.data),
                         torch.from_numpy(getattr(model, name).bias.data))

    with torch.no_grad():
        mean, std = (torch.from_numpy(v).reshape(1, 3, 1, 1) for v in (TORCH_MEAN, TORCH_STD))
        x = (torch.from_numpy(rgb) - mean) / std
        h = torch.flatten(features(x), 1)  # torchvision flattens NCHW, like minidl
        # torchvision's classifier: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear (dropout off in eval)
        ref = dense("predictions", tf.relu(dense("fc2", tf.relu(dense("fc1", h))))).numpy()
    assert_close(logits, ref, "predictions (logits)")


def test_the_architecture_is_defined_once_and_imports_in_any_order():
    """models/architecture.py is the one definition: the model and the weight format read it, and the two
    packages import each other's modules without a cycle, whichever comes first."""
    import subprocess
    import sys
    from pathlib import Path

    from minidl.models import architecture

    assert vgg19_shapes() == {n: s for n, s in architecture.vgg19_shapes().items()}
    root = Path(__file__).resolve().parent.parent
    code = ("import importlib, sys\n"
            "for first in ('minidl.weights', 'minidl.weights.format', 'minidl.weights.convert', 'minidl.models',\n"
            "              'minidl.models.vgg', 'minidl.weights.__main__'):\n"
            "    for name in [m for m in sys.modules if m.startswith('minidl')]:\n"
            "        del sys.modules[name]\n"
            "    importlib.import_module(first)\n"
            "    import minidl.models, minidl.weights\n"
            "    assert minidl.weights.format.vgg19_shapes is minidl.models.architecture.vgg19_shapes\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == "ok", done.stderr
