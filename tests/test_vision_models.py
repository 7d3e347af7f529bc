"""torchvision's vgg16/vgg19 in minidl.vision.models: torchvision's modules and state-dict keys, its
initialisation, any input size through the adaptive pooling, and a one-line refusal of pretrained weights."""
import numpy as np
import pytest

import minidl
from minidl import Tensor, nn
from minidl.vision import models

# torchvision's documented configurations (VGG paper "D" and "E"): output channels of each 3×3 convolution,
# "M" a 2×2 max pooling. Written here independently of minidl's architecture table.
CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def torchvision_shapes(arch, num_classes=1000):
    """{key: shape} of torchvision's state dict: features.i is a Conv2d followed by its ReLU at i + 1, or a
    MaxPool2d; classifier is Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear."""
    shapes, i, channels = {}, 0, 3
    for v in CONFIGS[arch]:
        if v == "M":
            i += 1
        else:
            shapes[f"features.{i}.weight"], shapes[f"features.{i}.bias"] = (v, channels, 3, 3), (v,)
            channels, i = v, i + 2
    for i, (n_out, n_in) in zip((0, 3, 6), ((4096, 512 * 7 * 7), (4096, 4096), (num_classes, 4096))):
        shapes[f"classifier.{i}.weight"], shapes[f"classifier.{i}.bias"] = (n_out, n_in), (n_out,)
    return shapes


@pytest.fixture(scope="module", params=["vgg16", "vgg19"])
def built(request):
    minidl.manual_seed(0)
    return request.param, getattr(models, request.param)(num_classes=10, dropout=0.25)


def test_state_dict_keys_and_shapes_are_torchvisions(built):
    arch, model = built
    state = model.state_dict()
    expected = torchvision_shapes(arch, num_classes=10)
    assert list(state) == list(expected)  # the same keys in the same order
    assert {k: v.shape for k, v in state.items()} == expected


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_keys_and_shapes_equal_torchvisions_own(arch):
    torchvision = pytest.importorskip("torchvision")
    theirs = getattr(torchvision.models, arch)(weights=None).state_dict()
    ours = getattr(models, arch)().state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    assert list(ours) == list(theirs)
    assert repr(getattr(models, arch)(weights=None)) == repr(getattr(torchvision.models, arch)(weights=None))


def test_modules_are_torchvisions(built):
    arch, model = built
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == sum(v != "M" for v in CONFIGS[arch])
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.activation is None for c in convs)
    kinds = [type(m).__name__ for m in model.features]
    assert kinds[:5] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"] and kinds[-1] == "MaxPool2d"
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 5 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    assert isinstance(model.avgpool, nn.AdaptiveAvgPool2d) and model.avgpool.output_size == (7, 7)
    assert [type(m).__name__ for m in model.classifier] == ["Linear", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.25, 0.25]
    assert "(avgpool): AdaptiveAvgPool2d(output_size=(7, 7))" in repr(model) and "(1): ReLU(inplace=True)" in repr(model)


def test_initialisation_is_torchvisions(built):
    """Convolutions N(0, 2 / fan_out), fan_out = out_channels · 9; linear layers N(0, 0.01²); biases 0."""
    _, model = built
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight.data
            expected = np.sqrt(2 / (w.shape[0] * 9)) if isinstance(m, nn.Conv2d) else 0.01
            tolerance = 5 / np.sqrt(2 * w.size)  # 5 standard errors of a sample's standard deviation
            assert abs(w.std() / expected - 1) < tolerance + 1e-3, (m, w.std(), expected)
            assert abs(w.mean()) < 5 * expected / np.sqrt(w.size)
            assert not m.bias.data.any()


@pytest.mark.parametrize("size", [32, 50])
def test_any_input_size_gives_one_row_of_logits_per_image(built, size):
    _, model = built
    x = Tensor(np.random.default_rng(1).standard_normal((2, 3, size, size)).astype(np.float32))
    y = model.eval()(x)
    assert y.shape == (2, 10) and np.isfinite(y.data).all() and y.dtype == np.float32


def test_a_torchvision_layout_state_dict_loads(built):
    arch, model = built
    rng = np.random.default_rng(2)
    state = {k: rng.standard_normal(shape).astype(np.float32) for k, shape in torchvision_shapes(arch, 10).items()}
    model.load_state_dict(state)
    for k, v in model.state_dict().items():
        assert np.array_equal(v, state[k]), k
    state["classifier.6.weight"] = state["classifier.6.weight"][:5]
    with pytest.raises(ValueError, match=r"'classifier\.6\.weight' has shape \(5, 4096\), the model expects \(10, 4096\)"):
        model.load_state_dict(state)


@pytest.mark.torch
def test_forward_matches_the_same_network_in_pytorch(built):
    """torchvision's VGG written with torch.nn in the test (torchvision itself may be absent), given our weights."""
    torch = pytest.importorskip("torch")
    arch, model = built
    layers, channels = [], 3
    for v in CONFIGS[arch]:
        if v == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
        else:
            layers += [torch.nn.Conv2d(channels, v, 3, padding=1), torch.nn.ReLU()]
            channels = v
    theirs = torch.nn.Module()
    theirs.features = torch.nn.Sequential(*layers)
    theirs.classifier = torch.nn.Sequential(torch.nn.Linear(25088, 4096), torch.nn.ReLU(), torch.nn.Dropout(),
                                            torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Dropout(),
                                            torch.nn.Linear(4096, 10))
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    theirs.eval()
    x = np.random.default_rng(3).standard_normal((2, 3, 40, 40)).astype(np.float32)
    with torch.no_grad():
        t = torch.nn.functional.adaptive_avg_pool2d(theirs.features(torch.from_numpy(x)), (7, 7))
        expected = theirs.classifier(torch.flatten(t, 1)).numpy()
    actual = model.eval()(Tensor(x)).data
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
@pytest.mark.parametrize("asked", [dict(weights="IMAGENET1K_V1"), dict(weights="VGG16_Weights.IMAGENET1K_V1"),
                                   dict(weights="DEFAULT"), dict(pretrained=True), dict(weights="enum")])
def test_pretrained_weights_are_refused_in_one_line_saying_what_to_do(arch, asked):
    enum = getattr(models, f"{arch.upper()}_Weights")
    if asked.get("weights") == "enum":  # torchvision's spelling: models.VGG16_Weights.DEFAULT
        asked = dict(weights=enum.DEFAULT)
    with pytest.raises(ValueError) as info:
        getattr(models, arch)(**asked)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{arch}(")
    if isinstance(asked.get("weights"), enum):
        assert message.startswith(f"{arch}(weights={arch.upper()}_Weights.IMAGENET1K_V1)")
    assert "cannot download" in message and "weights=None" in message
    assert "minidl.weights.fetch('vgg19', include_top=True)" in message
    # the functions it names exist and take what it says
    import inspect

    import minidl.weights

    assert {"arch", "include_top"} <= set(inspect.signature(minidl.weights.fetch).parameters)
    assert {"weights", "include_top"} <= set(inspect.signature(minidl.models.vgg19).parameters)


def test_weights_none_and_pretrained_false_build_the_model():
    minidl.manual_seed(1)
    a = models.vgg16(weights=None, num_classes=3, init_weights=False)
    b = models.vgg16(pretrained=False, num_classes=3, init_weights=False)
    assert list(a.state_dict()) == list(b.state_dict()) and a.classifier[6].out_features == 3


def test_as_torch_maps_torchvision_models():
    from minidl.as_torch import MODULES, resolve

    assert resolve(MODULES["torchvision.models"]) is models
    assert minidl.vision.models is models


def test_a_whole_model_saved_comes_back_only_with_weights_only_false_and_in_its_mode(built, tmp_path):
    """torch.save(model, path) / torch.load(path, weights_only=False), as the course's saving tutorial does:
    minidl's model file, rebuilt without running code from it; PyTorch's default (weights_only=True) refuses."""
    from minidl.serialization import SaveFileError

    arch, model = built
    if arch != "vgg16":
        pytest.skip("one architecture is enough: the file is half a gigabyte")
    model.eval()
    minidl.save(model, tmp_path / "model.pth")
    with pytest.raises(SaveFileError, match=r"model\.pth holds a whole model .*weights_only=False"):
        minidl.load(tmp_path / "model.pth")
    back = minidl.load(tmp_path / "model.pth", weights_only=False)
    assert type(back) is models.VGG and repr(back) == repr(model)
    assert not any(m.training for m in back.modules())  # saved after eval(): comes back in eval mode
    for (k, v), (k2, v2) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k == k2 and np.array_equal(v, v2), k
    x = Tensor(np.random.default_rng(4).standard_normal((1, 3, 32, 32)).astype(np.float32))
    assert np.array_equal(back(x).data, model(x).data)  # eval mode: no dropout on either side
    assert nn.load_model(tmp_path / "model.pth").training  # Keras's load_model: a model ready to train
    model.train()


@pytest.mark.slow
def test_the_saving_course_steps_run_under_as_torch(tmp_path, capsys, monkeypatch):
    """The state_dict and whole-model steps of PyTorch's saving tutorial, written here, run as a program."""
    from minidl.as_torch import run

    program = tmp_path / "saving.py"
    program.write_text(
        "import torch\nimport torchvision.models as models\n"
        "model = models.vgg16(weights=None)\n"
        "torch.save(model.state_dict(), 'weights.pth')\n"
        "other = models.vgg16()\n"
        "other.load_state_dict(torch.load('weights.pth'))\n"
        "other.eval()\n"
        "torch.save(other, 'model.pth')\n"
        "try:\n    torch.load('model.pth')\nexcept Exception as e:\n    print('refused:', type(e).__name__)\n"
        "back = torch.load('model.pth', weights_only=False)\n"
        "same = all((a == b).all() for a, b in zip(model.state_dict().values(), back.state_dict().values()))\n"
        "print(type(back).__name__, back.training, same, back(torch.rand(1, 3, 32, 32)).shape)\n")
    monkeypatch.chdir(tmp_path)
    run(program)
    assert capsys.readouterr().out == "refused: SaveFileError\nVGG False True torch.Size([1, 1000])\n"
