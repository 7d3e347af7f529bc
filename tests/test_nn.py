"""Modules: parameter discovery, modes, freezing, state dicts and HDF5 save/load."""
import os

import h5py
import numpy as np
import pytest

import minidl
from minidl import Tensor, gradcheck, nn


def mlp(seed=0):
    minidl.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))


def test_parameters_are_found_by_attribute_with_dotted_names():
    class Block(nn.Module):
        def __init__(self):
            self.body = mlp()
            self.scale = nn.Parameter(np.ones(3, dtype=np.float32))

        def forward(self, x):
            return self.body(x) * self.scale

    names = [n for n, _ in Block().named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "body.3.weight", "body.3.bias", "scale"]


def test_linear_shapes_and_glorot_range():
    layer = nn.Linear(100, 50)
    assert layer.weight.shape == (50, 100) and layer.bias.shape == (50,)
    limit = np.sqrt(6 / 150)
    assert np.abs(layer.weight.data).max() <= limit and np.abs(layer.weight.data).max() > 0.9 * limit
    assert not layer.bias.data.any()


def test_initialisation_is_seedable():
    a, b, c = mlp(1), mlp(1), mlp(2)
    np.testing.assert_array_equal(a[0].weight.data, b[0].weight.data)
    assert not np.array_equal(a[0].weight.data, c[0].weight.data)


@pytest.mark.parametrize("layer", [nn.Linear(4, 3), nn.Sigmoid(), nn.Tanh(), nn.ReLU(), nn.Flatten()])
def test_layer_gradcheck(layer):
    layer.requires_grad_(False)  # parameters are checked through the functional ops; here the input
    x = np.random.default_rng(0).uniform(0.2, 1.0, (2, 4))
    params = [p for p in layer.parameters()]
    for p in params:
        p.data = p.data.astype(np.float64)
    assert gradcheck(lambda t: layer(t), x)


def test_linear_layer_parameter_gradients():
    layer = nn.Linear(4, 3)
    x = np.random.default_rng(1).standard_normal((5, 4))
    w, b = layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
    assert gradcheck(lambda x, w, b: minidl.functional.linear(x, w, b), x, w, b)
    assert [p.shape for p in layer.parameters()] == [(3, 4), (3,)]


def test_dropout_is_identity_in_eval_mode_and_scales_in_train_mode():
    model = mlp()
    drop = model[2]
    x = Tensor(np.ones((1000, 8), dtype=np.float32))
    model.eval()
    assert not drop.training
    np.testing.assert_array_equal(drop(x).data, x.data)
    model.train()
    y = drop(x).data
    assert set(np.unique(y)) == {0.0, 2.0} and abs(y.mean() - 1.0) < 0.05


def test_requires_grad_false_freezes_parameters():
    model = mlp().requires_grad_(False)
    out = model(Tensor(np.ones((2, 4), dtype=np.float32)))
    assert not out.requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_clears_gradients():
    model = mlp()
    model(Tensor(np.ones((2, 4), dtype=np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_save_load_round_trip(tmp_path):
    a, b = mlp(1), mlp(2)
    path = a.save(tmp_path / "model.h5")
    b.load(path)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.data, pb.data)
    assert [f for f in os.listdir(tmp_path)] == ["model.h5"]  # no temporary file left behind


def test_load_names_the_parameter_at_fault(tmp_path):
    path = mlp().save(tmp_path / "model.h5")
    wider = nn.Sequential(nn.Linear(4, 9), nn.ReLU(), nn.Dropout(), nn.Linear(9, 3))
    with pytest.raises(ValueError, match=r"model\.h5.*'0\.weight' has shape \(8, 4\).*\(9, 4\)"):
        wider.load(path)
    deeper = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 3), nn.Linear(3, 3))
    with pytest.raises(KeyError, match=r"missing parameters \['4\.weight', '4\.bias'\]"):
        deeper.load(path)
    with h5py.File(path, "a") as f:
        f["extra"] = np.zeros(2)
    with pytest.raises(KeyError, match=r"unexpected parameters \['extra'\]"):
        mlp().load(path)


def test_a_failed_load_leaves_the_model_unchanged(tmp_path):
    path = mlp(1).save(tmp_path / "model.h5")
    with h5py.File(path, "a") as f:
        del f["3/bias"]
        f["3/bias"] = np.zeros(4)  # wrong shape in the last layer only
    model = mlp(2)
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="'3.bias'"):
        model.load(path)
    for p, old in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, old)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.h5"
    mlp(1).save(path)
    original = path.read_bytes()

    def broken_create_dataset(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", broken_create_dataset)
    with pytest.raises(OSError, match="disk full"):
        mlp(2).save(path)
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["model.h5"]


def test_sequential_repr_lists_layers():
    text = repr(mlp())
    assert "(0): Linear(in_features=4, out_features=8, bias=True)" in text and "(2): Dropout(p=0.5, inplace=False)" in text


# --- load_model: a model rebuilt from its file alone ------------------------------------------------------

def test_load_model_rebuilds_a_sequential_from_the_file_alone(tmp_path):
    minidl.manual_seed(4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))
    model.save(tmp_path / "model.h5")
    rebuilt = nn.load_model(tmp_path / "model.h5")
    assert repr(rebuilt) == repr(model)
    x = Tensor(np.random.default_rng(0).random((5, 28, 28), dtype=np.float32))
    assert np.array_equal(rebuilt.eval()(x).data, model.eval()(x).data)


def test_load_model_rebuilds_convolutions_pooling_and_nested_sequentials(tmp_path):
    minidl.manual_seed(5)
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, (3, 5), stride=2, padding=(1, 2), activation="relu"), nn.MaxPool2d(2)),
        nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.Tanh(), nn.AvgPool2d(2, stride=1), nn.AdaptiveAvgPool2d((3, 2)),
        nn.AdaptiveAvgPool2d(1), nn.Sigmoid(), nn.Flatten(),
        nn.Linear(6, 2, bias=False))
    model.save(tmp_path / "conv.h5")
    rebuilt = nn.load_model(tmp_path / "conv.h5")
    assert repr(rebuilt) == repr(model)
    x = Tensor(np.random.default_rng(1).random((2, 3, 8, 8), dtype=np.float32))
    assert np.array_equal(rebuilt(x).data, model(x).data)


def test_load_model_refuses_a_custom_module_saying_how_to_load_it(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            self.body = mlp()

        def forward(self, x):
            return self.body(x)

    Net().save(tmp_path / "net.h5")
    with pytest.raises(nn.ModelFileError, match=r"net\.h5 holds the weights of a Net.*build the model in code and "
                                                r"call model\.load"):
        nn.load_model(tmp_path / "net.h5")
    assert isinstance(Net().load(tmp_path / "net.h5"), Net)  # the way that works
    # a Sequential holding a custom layer cannot be rebuilt either
    nn.Sequential(nn.Linear(4, 4), Net()).save(tmp_path / "mixed.h5")
    with pytest.raises(nn.ModelFileError, match="mixed.h5 holds the weights of a Sequential"):
        nn.load_model(tmp_path / "mixed.h5")


def old_format_file(path, model):
    """A model file as minidl wrote it before the layer list was recorded: weights and the class name only."""
    with h5py.File(path, "w") as f:
        f.attrs["module"] = type(model).__name__
        for name, array in model.state_dict().items():
            f.create_dataset(name.replace(".", "/"), data=array)
    return path


def test_old_format_and_corrupt_files_are_refused_naming_the_file(tmp_path):
    old = old_format_file(tmp_path / "old.h5", mlp(1))
    with pytest.raises(nn.ModelFileError, match=r"old\.h5 was saved by an older minidl.*model\.load"):
        nn.load_model(old)
    assert np.array_equal(mlp(2).load(old)[0].weight.data, mlp(1)[0].weight.data)  # its weights still load

    mlp().save(tmp_path / "good.h5")
    data = (tmp_path / "good.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(nn.ModelFileError, match=r"cut\.h5 is damaged or not a minidl model file"):
        nn.load_model(tmp_path / "cut.h5")
    with h5py.File(tmp_path / "good.h5", "a") as f:
        f.attrs["architecture"] = '{"class": "Sequential", "config": {"layers": [{"class": "LSTM", "config": {}}]}}'
    with pytest.raises(nn.ModelFileError, match=r"good\.h5: cannot rebuild.*unknown layer class 'LSTM'"):
        nn.load_model(tmp_path / "good.h5")
    with h5py.File(tmp_path / "vgg.h5", "w") as f:
        f.attrs["arch"], f.attrs["format_version"] = "vgg19", 1
    with pytest.raises(nn.ModelFileError, match=r"vgg\.h5 is a vgg19 weight file.*minidl\.models\.vgg19"):
        nn.load_model(tmp_path / "vgg.h5")


@pytest.mark.parametrize("load", [lambda p: mlp().load(p), nn.load_model])
def test_not_a_model_file_says_which_file_and_what_it_is_not(tmp_path, load):
    # h5py's "file signature not found" and its long FileNotFoundError are gone
    (tmp_path / "notes.txt").write_text("my notes")
    with pytest.raises(nn.ModelFileError, match=r"notes\.txt is not a minidl model file \(not an HDF5 file"):
        load(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match=r"^no such model file: .*missing\.h5$"):
        load(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(2)
    with pytest.raises(nn.ModelFileError, match=r"other\.h5 is an HDF5 file but not a minidl model file"):
        load(tmp_path / "other.h5")


def test_loading_into_other_layers_names_what_the_file_holds(tmp_path):
    # the README's model without Flatten against a file of a Sequential that starts with Flatten
    nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)).save(tmp_path / "model.h5")
    with pytest.raises(KeyError, match=r"missing parameters.*The file holds Sequential\(Flatten\(\), Linear\("
                                       r"in_features=784.*nn\.load_model\("):
        nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)).load(tmp_path / "model.h5")


# --- shared layers: one tensor, listed once, moved once, saved once ----------------------------------------

def shared_mlp():
    minidl.manual_seed(0)
    lin = nn.Linear(4, 4)
    return nn.Sequential(lin, nn.ReLU(), lin), lin


def test_a_layer_used_twice_is_listed_once_under_its_first_name():
    model, lin = shared_mlp()
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [id(p) for p in model.parameters()] == [id(lin.weight), id(lin.bias)]
    assert list(model.state_dict()) == ["0.weight", "0.bias"]
    assert [n for n, _ in model.named_parameters(remove_duplicate=False)] == ["0.weight", "0.bias",
                                                                             "2.weight", "2.bias"]


def test_an_attribute_assigned_twice_is_listed_once():
    class Twice(nn.Module):
        def __init__(self):
            self.a = nn.Linear(3, 3)
            self.b = self.a
            self.c = nn.Linear(3, 2)

        def forward(self, x):
            return self.c(self.b(self.a(x)))

    assert [n for n, _ in Twice().named_parameters()] == ["a.weight", "a.bias", "c.weight", "c.bias"]


def test_one_sgd_step_moves_a_shared_weight_once_by_the_sum_of_its_uses_gradients():
    from minidl import optim

    model, lin = shared_mlp()
    x = Tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    before = lin.weight.data.copy()
    opt = optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    model(x).sum().backward()
    # the same network with two separate copies of the layer: the shared gradient is the sum of theirs
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    for copy in (first, second):
        copy.load_state_dict(lin.state_dict())
    nn.Sequential(first, nn.ReLU(), second)(x).sum().backward()
    np.testing.assert_allclose(lin.weight.grad, first.weight.grad + second.weight.grad, rtol=1e-6, atol=1e-6)
    g = lin.weight.grad.copy()
    opt.step()
    np.testing.assert_array_equal(lin.weight.data, before - np.float32(0.1) * g)


def test_adam_keeps_one_state_for_a_shared_weight():
    from minidl import optim

    model, _ = shared_mlp()
    assert len(optim.Adam(model.parameters()).params) == 2


def test_an_optimizer_refuses_a_tensor_listed_twice_in_one_line():
    from minidl import optim

    lin = nn.Linear(2, 2)
    with pytest.raises(ValueError) as e:
        optim.SGD([lin.weight, lin.bias, lin.weight], lr=0.1)
    assert str(e.value) == ("SGD got parameter 2 twice (first as parameter 0): list each tensor once "
                            "(model.parameters() lists a shared layer's tensors once)")


def test_save_and_load_model_keep_a_shared_layer_tied(tmp_path):
    model, lin = shared_mlp()
    model.save(tmp_path / "tied.h5")
    with h5py.File(tmp_path / "tied.h5") as f:
        assert sorted(f["0"]) == ["bias", "weight"] and "2" not in f  # stored once
    rebuilt = nn.load_model(tmp_path / "tied.h5")
    assert rebuilt[0].weight is rebuilt[2].weight and rebuilt[0].bias is rebuilt[2].bias
    np.testing.assert_array_equal(rebuilt[0].weight.data, lin.weight.data)
    x = Tensor(np.ones((2, 4), dtype=np.float32))
    np.testing.assert_array_equal(rebuilt(x).data, model(x).data)
    # and the custom-module route: the same model built in code loads the file
    fresh, _ = shared_mlp()
    fresh[0].weight.data[...] = 0
    np.testing.assert_array_equal(fresh.load(tmp_path / "tied.h5")[2].weight.data, lin.weight.data)


def test_save_and_load_model_keep_a_tie_between_two_layers_parameters(tmp_path):
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3))
    model[2].weight = model[0].weight  # weight tying without sharing the layer: the biases stay apart
    model.save(tmp_path / "tied.h5")
    rebuilt = nn.load_model(tmp_path / "tied.h5")
    assert rebuilt[2].weight is rebuilt[0].weight and rebuilt[2].bias is not rebuilt[0].bias
    assert [n for n, _ in rebuilt.named_parameters()] == ["0.weight", "0.bias", "2.bias"]


def test_adaptive_avg_pool2d_refuses_bad_shapes_and_sizes_naming_them():
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d expects x of shape \(N, C, H, W\) or \(C, H, W\), got \(2, 3\)"):
        nn.AdaptiveAvgPool2d(2)(Tensor(np.zeros((2, 3))))
    for size in (0, (7,), (2.5, 3), "7"):
        with pytest.raises(ValueError, match=r"output_size must be a positive int"):
            minidl.functional.adaptive_avg_pool2d(Tensor(np.zeros((1, 1, 4, 4))), size)


def test_adaptive_avg_pool2d_averages_the_windows_pytorch_places():
    """10 -> 7: window i covers rows floor(10 i / 7) .. ceil(10 (i + 1) / 7) - 1, so neighbours share a row."""
    x = np.arange(10.0)[None, None, :, None] * np.ones((1, 1, 10, 3))
    y = minidl.functional.adaptive_avg_pool2d(Tensor(x), (7, 1)).data[0, 0, :, 0]
    starts = [i * 10 // 7 for i in range(7)]
    ends = [-(-(i + 1) * 10 // 7) for i in range(7)]
    assert any(e > s2 for e, s2 in zip(ends, starts[1:]))  # the case where windows overlap
    np.testing.assert_allclose(y, [np.arange(s, e).mean() for s, e in zip(starts, ends)])


def test_pytorchs_in_place_initialisers():
    minidl.manual_seed(0)
    w = nn.Parameter(np.ones((64, 32, 3, 3), dtype=np.float32))
    for mode, fan in (("fan_in", 32 * 9), ("fan_out", 64 * 9)):
        assert nn.init.kaiming_normal_(w, mode=mode, nonlinearity="relu") is w
        assert w.dtype == np.float32 and w.shape == (64, 32, 3, 3)
        assert abs(w.data.std() / np.sqrt(2 / fan) - 1) < 0.02
    nn.init.normal_(w, 3.0, 0.01)
    assert abs(w.data.mean() - 3.0) < 1e-3 and abs(w.data.std() / 0.01 - 1) < 0.02
    nn.init.zeros_(w)
    assert not w.data.any()
    assert np.all(nn.init.constant_(w, 0.5).data == 0.5)
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan'"):
        nn.init.kaiming_normal_(w, mode="fan")
    with pytest.raises(ValueError, match="unsupported nonlinearity 'selu'"):
        nn.init.calculate_gain("selu")


@pytest.mark.torch
def test_calculate_gain_is_pytorchs():
    torch = pytest.importorskip("torch")
    for args in [("linear",), ("conv2d",), ("sigmoid",), ("relu",), ("tanh",), ("leaky_relu",), ("leaky_relu", 0.2)]:
        assert nn.init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args), rel=1e-12)


def test_relu_inplace_is_accepted_printed_and_saved_but_leaves_its_input():
    x = Tensor(np.array([-1.0, 0.0, 2.0]))
    layer = nn.ReLU(inplace=True)
    assert repr(layer) == "ReLU(inplace=True)" and repr(nn.ReLU()) == "ReLU()"
    np.testing.assert_array_equal(layer(x).data, [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(x.data, [-1.0, 0.0, 2.0])
    assert nn.ReLU().get_config() == {} and layer.get_config() == {"inplace": True}
