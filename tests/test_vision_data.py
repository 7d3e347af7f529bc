"""Tests for minidl.utils.data (datasets on the one DataLoader), minidl.vision, minidl.save/load, Module.to
and the devices, and the names as_torch maps for PyTorch's beginner course."""
import collections
import gzip
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.datasets import DatasetError
from minidl.datasets import fashion_mnist as fm
from minidl.image import ImageError
from minidl.serialization import SaveFileError
from minidl.utils.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split
from minidl.vision import datasets, io, transforms
from tests.test_datasets import REAL_SYSTEM_DIR, Handler, idx_bytes, isolated, make_split, serve_split, server, write  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def fashion_root(tmp_path, n_train=70, n_test=30, gz=True):
    """A torchvision-layout root: root/FashionMNIST/raw/ with small random splits."""
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    written = {}
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        images, labels = make_split(n, seed)
        names = fm.FILES[split]
        write(raw / names[0], idx_bytes(images), gz)
        write(raw / names[1], idx_bytes(labels), gz)
        written[split] = (images, labels)
    return tmp_path / "root", written


# ------------------------------------------------------------------------------------- collation, loaders
def test_default_collate_types():
    x = default_collate([(minidl.ones(2, 3), 1, 0.5, True, "a"), (minidl.zeros(2, 3), 2, 1.5, False, "b")])
    assert isinstance(x, list) and len(x) == 5  # tuples collate to a list, as PyTorch's
    assert x[0].shape == (2, 2, 3) and x[0].dtype == np.float32
    assert x[1].dtype == np.int64 and x[1].tolist() == [1, 2]
    assert x[2].dtype == np.float64 and x[3].dtype == np.bool_ and x[4] == ["a", "b"]
    arrays = default_collate([np.arange(3, dtype=np.int32), np.arange(3, dtype=np.int32) + 5])
    assert isinstance(arrays, minidl.Tensor) and arrays.dtype == np.int32 and arrays.data[1, 0] == 5
    d = default_collate([{"x": np.float32(1), "y": [1, 2]}, {"x": np.float32(3), "y": [3, 4]}])
    assert d["x"].dtype == np.float32 and [t.tolist() for t in d["y"]] == [[1, 3], [2, 4]]
    Pair = collections.namedtuple("Pair", "a b")
    p = default_collate([Pair(1, 2.0), Pair(3, 4.0)])
    assert isinstance(p, Pair) and p.a.tolist() == [1, 3]


def test_default_collate_refusals():
    with pytest.raises(RuntimeError, match="different lengths"):
        default_collate([(1, 2), (1, 2, 3)])
    with pytest.raises(TypeError, match="cannot batch samples of type object"):
        default_collate([object(), object()])


def test_loader_over_list_of_pairs_and_defaults():
    pairs = [(np.full((2,), i, np.float32), i) for i in range(5)]
    loader = DataLoader(pairs)  # batch_size=1 by default for a dataset
    assert len(loader) == 5
    xb, yb = next(iter(loader))
    assert xb.shape == (1, 2) and yb.dtype == np.int64
    batches = list(DataLoader(pairs, batch_size=2))
    assert [b[1].tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert [b[1].tolist() for b in DataLoader(pairs, batch_size=2, drop_last=True)] == [[0, 1], [2, 3]]
    assert len(DataLoader(pairs, batch_size=2, drop_last=True)) == 2


def test_loader_shuffle_collate_fn_and_manual_seed():
    data = list(range(20))
    minidl.manual_seed(5)
    a = [b.tolist() for b in DataLoader(data, batch_size=4, shuffle=True)]
    minidl.manual_seed(5)
    b = [b.tolist() for b in DataLoader(data, batch_size=4, shuffle=True)]
    assert a == b and sorted(sum(a, [])) == data and sum(a, []) != data
    seeded = DataLoader(data, batch_size=20, shuffle=True, seed=3)
    assert next(iter(seeded)).tolist() != next(iter(seeded)).tolist()  # a new order each epoch
    got = list(DataLoader(data, batch_size=6, collate_fn=lambda samples: sum(samples)))
    assert got == [15, 51, 87, 37]
    with pytest.raises(ValueError, match="collate_fn is for a dataset"):
        DataLoader(np.arange(4), collate_fn=list)


def test_dataset_subclass_tensor_dataset_and_getitems():
    class Squares(Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return i * i

    assert [b.tolist() for b in DataLoader(Squares(), batch_size=3)] == [[0, 1, 4], [9, 16, 25], [36]]
    with pytest.raises(NotImplementedError):
        Dataset()[0]

    class Batched(Squares):
        def __getitems__(self, indices):  # PyTorch's batched fetch: a list of samples
            return [-i for i in indices]

    assert [b.tolist() for b in DataLoader(Batched(), batch_size=4)] == [[0, -1, -2, -3], [-4, -5, -6]]
    x, y = minidl.randn(10, 3), minidl.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10 and ds[2][1].item() == 2
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    np.testing.assert_array_equal(xb.data, x.data[:4])
    with pytest.raises(ValueError, match=r"same first dimension.*\(10, 3\), \(9,\)"):
        TensorDataset(x, minidl.arange(9))
    both = Squares() + Squares()
    assert len(both) == 14 and both[8] == 1 and both[-1] == 36
    with pytest.raises(IndexError):
        both[14]


def test_random_split():
    minidl.manual_seed(0)
    parts = random_split(list(range(10)), [7, 3])
    assert [len(p) for p in parts] == [7, 3] and isinstance(parts[0], Subset)
    assert sorted([parts[0][i] for i in range(7)] + [parts[1][i] for i in range(3)]) == list(range(10))
    fractions = random_split(range(11), [0.5, 0.5], generator=np.random.default_rng(1))
    assert [len(p) for p in fractions] == [6, 5]
    with pytest.raises(ValueError, match="summing to the dataset's length 10"):
        random_split(list(range(10)), [5, 4])


# ---------------------------------------------------------------------------------------------- vision
def test_fashion_mnist_layout_items_and_attributes(tmp_path):
    root, written = fashion_root(tmp_path)
    ds = datasets.FashionMNIST(root, train=True)
    images, labels = written["train"]
    assert len(ds) == 70 and ds.data.dtype == np.uint8 and ds.data.shape == (70, 28, 28)
    assert ds.targets.dtype == np.int64 and ds.classes[9] == "Ankle boot" and ds.class_to_idx["Bag"] == 8
    image, label = ds[3]
    assert image.mode == "L" and image.size == (28, 28) and type(label) is int and label == labels[3]
    np.testing.assert_array_equal(np.asarray(image), images[3])
    test = datasets.FashionMNIST(root, train=False, transform=transforms.ToTensor(),
                                 target_transform=lambda y: y + 100)
    x, y = test[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and y == written["test"][1][0] + 100
    assert "Split: Test" in repr(test) and "ToTensor()" in repr(test)


def test_fashion_mnist_missing_without_download_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not found in .*FashionMNIST/raw: pass download=True") as e:
        datasets.FashionMNIST(tmp_path / "empty")
    assert "\n" not in str(e.value)


def test_fashion_mnist_corrupt_file_named(tmp_path):
    root, _ = fashion_root(tmp_path, gz=False)
    bad = root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:-3])
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.*truncated"):
        datasets.FashionMNIST(root, train=False)


def test_fashion_mnist_download_finds_system_files_first(tmp_path):
    system = Path(fm.SYSTEM_DIR)  # the `isolated` fixture points it at an empty temporary folder
    images, _ = make_split(12, 4)
    write(system / "t10k-images-idx3-ubyte", idx_bytes(images), gz=True)
    write(system / "t10k-labels-idx1-ubyte", idx_bytes(np.arange(12) % 10), gz=True)
    ds = datasets.FashionMNIST(tmp_path / "data", train=False, download=True)
    np.testing.assert_array_equal(ds.data.data, images)
    assert not (tmp_path / "data").exists()  # found, so nothing downloaded or written


def test_fashion_mnist_download_into_root_checksummed(tmp_path, monkeypatch, server):
    images, labels = serve_split(monkeypatch, "/m", "test", 6)
    monkeypatch.setattr(fm, "MIRRORS", [server + "/m/"])
    ds = datasets.FashionMNIST(tmp_path / "data", train=False, download=True)
    np.testing.assert_array_equal(ds.targets.data, labels)
    assert sorted(os.listdir(tmp_path / "data" / "FashionMNIST" / "raw")) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    monkeypatch.setitem(fm.SHA256, "train-images-idx3-ubyte", "0" * 64)
    serve_split(monkeypatch, "/m", "train", 6, register_hash=False)
    with pytest.raises(minidl.fileio.DownloadError, match="SHA-256 mismatch"):
        datasets.FashionMNIST(tmp_path / "data", train=True, download=True)
    assert not any("train" in name for name in os.listdir(tmp_path / "data" / "FashionMNIST" / "raw"))


def test_mnist_layout_and_md5_refusal(tmp_path, monkeypatch, server):
    raw = tmp_path / "MNIST" / "raw"
    images, labels = make_split(9, 7)
    write(raw / "t10k-images-idx3-ubyte", idx_bytes(images))
    write(raw / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    ds = datasets.MNIST(tmp_path, train=False)
    assert len(ds) == 9 and ds[0][1] == labels[0] and ds.classes[3] == "3 - three"
    Handler.routes["/x/train-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images))
    from minidl.datasets import mnist

    monkeypatch.setattr(mnist, "MIRRORS", [server + "/x/"])
    with pytest.raises(minidl.fileio.DownloadError, match="MD5 mismatch for train-images-idx3-ubyte.gz"):
        datasets.MNIST(tmp_path, train=True, download=True)
    with pytest.raises(FileNotFoundError, match="MNIST train files"):
        datasets.MNIST(tmp_path, train=True)


@pytest.mark.parametrize("transform", [
    transforms.ToTensor(),
    transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.25,))]),
    transforms.Compose([transforms.ToTensor(), transforms.Lambda(lambda x: x * 2)]),  # sample by sample
])
def test_whole_batch_path_equals_sample_by_sample(tmp_path, transform):
    root, _ = fashion_root(tmp_path)
    ds = datasets.FashionMNIST(root, train=True, transform=transform)
    fast = list(DataLoader(ds, batch_size=32))
    slow = list(DataLoader(ds, batch_size=32, collate_fn=default_collate))  # a collate_fn: always per sample
    assert len(fast) == len(slow) == 3 and fast[-1][0].shape == (6, 1, 28, 28)
    for (xf, yf), (xs, ys) in zip(fast, slow):
        assert xf.dtype == xs.dtype == np.float32 and yf.dtype == ys.dtype == np.int64
        np.testing.assert_array_equal(xf.data, xs.data)  # the same bits
        np.testing.assert_array_equal(yf.data, ys.data)


def test_whole_batch_path_not_used_by_a_subclass(tmp_path):
    root, _ = fashion_root(tmp_path)

    class Flipped(datasets.FashionMNIST):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x, 9 - y

    ds = Flipped(root, transform=transforms.ToTensor())
    _, y = next(iter(DataLoader(ds, batch_size=5)))
    assert y.tolist() == [9 - int(t) for t in ds.targets.data[:5]]


def test_transforms_values_and_refusals():
    array = np.array([[0, 255], [51, 102]], np.uint8)
    x = transforms.ToTensor()(array)
    assert x.shape == (1, 2, 2) and x.data[0, 0, 1] == 1.0 and x.data[0, 1, 0] == np.float32(51) / np.float32(255)
    rgb = transforms.ToTensor()(np.zeros((4, 5, 3), np.uint8))
    assert rgb.shape == (3, 4, 5)
    floats = transforms.ToTensor()(np.full((2, 2), 7.0))
    assert floats.dtype == np.float64 and floats.data.max() == 7.0  # not scaled: only uint8 is
    n = transforms.Normalize((0.5,), (0.5,))(x)
    np.testing.assert_allclose(n.data, (x.data - 0.5) / 0.5)
    three = transforms.Normalize([1, 2, 3], [1, 1, 2])(minidl.zeros(3, 1, 1))
    assert three.data.ravel().tolist() == [-1, -2, -1.5]
    with pytest.raises(TypeError, match="PIL image or a NumPy array"):
        transforms.ToTensor()([1, 2])
    with pytest.raises(TypeError, match="apply ToTensor first"):
        transforms.Normalize((0.5,), (0.5,))(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="std .* contains a zero"):
        transforms.Normalize((0.5,), (0,))
    with pytest.raises(ValueError, match="do not fit 3 channels"):
        transforms.Normalize((0.5, 0.5), (1, 1))(minidl.zeros(3, 2, 2))
    with pytest.raises(TypeError, match="should be callable"):
        transforms.Lambda(3)
    assert transforms.Compose([transforms.ToTensor(), transforms.Lambda(lambda t: t.shape)])(array) == (1, 2, 2)


def test_read_image(tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    t = io.read_image(tmp_path / "a.png")
    assert t.dtype == np.uint8 and t.shape == (3, 5, 7)
    np.testing.assert_array_equal(t.data, pixels.transpose(2, 0, 1))
    gray = io.read_image(str(tmp_path / "a.png"), mode=io.ImageReadMode.GRAY)
    assert gray.shape == (1, 5, 7)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ImageError, match="bad.png: not an image"):
        io.read_image(tmp_path / "bad.png")
    with pytest.raises(ImageError, match="missing.png: no such file"):
        io.read_image(tmp_path / "missing.png")


# ----------------------------------------------------------------------------------------------- save/load
def test_save_load_round_trips(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    minidl.save(model.state_dict(), tmp_path / "model.pth")
    other = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    other.load_state_dict(minidl.load(tmp_path / "model.pth", weights_only=True))
    for (name, p), (_, q) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    obj = {"t": minidl.tensor([[1.5, 2.0]], requires_grad=True), 3: [np.arange(4, dtype=np.int16), (None, "s")],
           "n": {"x": 2.5, "b": True, "i": np.int32(7)}, "e": minidl.zeros(0)}
    minidl.save(obj, tmp_path / "obj")  # no suffix added
    got = minidl.load(tmp_path / "obj")
    assert set(got) == {"t", 3, "n", "e"} and got["t"].requires_grad and got["t"].dtype == np.float32
    assert got[3][0].dtype == np.int16 and got[3][1] == (None, "s") and got["e"].shape == (0,)
    assert got["n"] == {"x": 2.5, "b": True, "i": 7} and got["n"]["i"].dtype == np.int32
    minidl.save(minidl.arange(3), tmp_path / "t.pth")
    assert minidl.load(tmp_path / "t.pth").tolist() == [0, 1, 2]


def test_whole_model_only_with_weights_only_false(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    minidl.save(model, tmp_path / "whole.pth")
    with pytest.raises(SaveFileError, match=r"whole.pth holds a whole model.*weights_only=False"):
        minidl.load(tmp_path / "whole.pth")
    back = minidl.load(tmp_path / "whole.pth", weights_only=False)
    np.testing.assert_array_equal(back[0].weight.data, model[0].weight.data)


def test_save_refusals_write_nothing(tmp_path):
    with pytest.raises(TypeError, match=r"x.pth\): the object\['k'\]\[1\] is a set"):
        minidl.save({"k": [1, {2}]}, tmp_path / "x.pth")
    with pytest.raises(TypeError, match="has a key"):
        minidl.save({(1, 2): 3}, tmp_path / "x.pth")
    with pytest.raises(TypeError, match="array of <U1, not of numbers"):
        minidl.save(np.array(["a"]), tmp_path / "x.pth")
    assert os.listdir(tmp_path) == []


def test_load_refusals_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: .*nothing.pth"):
        minidl.load(tmp_path / "nothing.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(SaveFileError, match="text.pth is not a file minidl.save wrote"):
        minidl.load(tmp_path / "text.pth")
    with zipfile.ZipFile(tmp_path / "fake_torch.pth", "w") as z:  # the layout of a PyTorch file
        z.writestr("archive/data.pkl", b"\x80\x02cos\nsystem\n.")
    with pytest.raises(SaveFileError, match="fake_torch.pth is a PyTorch file .*does not unpickle"):
        minidl.load(tmp_path / "fake_torch.pth")
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(SaveFileError, match="plain.npz is a zip archive but not"):
        minidl.load(tmp_path / "plain.npz")
    minidl.save([minidl.ones(3)], tmp_path / "cut.pth")
    data = (tmp_path / "cut.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(SaveFileError, match="cut.pth"):
        minidl.load(tmp_path / "cut.pth")
    with pytest.raises(RuntimeError, match="minidl runs on the CPU"):
        minidl.load(tmp_path / "cut.pth", map_location="cuda:0")
    nn.Linear(2, 2).save(tmp_path / "custom.h5")  # a minidl model file is also refused by default
    with pytest.raises(SaveFileError, match="custom.h5 holds a whole model"):
        minidl.load(tmp_path / "custom.h5")


def test_load_real_pytorch_file_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "real.pth")
    with pytest.raises(SaveFileError, match="real.pth is a PyTorch file"):
        minidl.load(tmp_path / "real.pth")


# ------------------------------------------------------------------------------------ devices, tensors
def test_module_to_cpu_float_and_refusals():
    model = nn.Sequential(nn.Linear(3, 2))
    weight = model[0].weight
    assert model.to("cpu") is model and model.to(minidl.device("cpu")) is model and model.cpu() is model
    assert model.double() is model and weight.dtype == np.float64 and model[0].weight is weight
    assert model.float() is model and weight.dtype == np.float32
    assert model.to("cpu", minidl.float64) is model and weight.dtype == np.float64
    for bad in (lambda: model.cuda(), lambda: model.to("cuda"), lambda: model.to("mps"), lambda: model.cuda(1)):
        with pytest.raises(RuntimeError, match=r"not available: minidl runs on the CPU only") as e:
            bad()
        assert "\n" not in str(e.value)
    with pytest.raises(TypeError, match="floating point"):
        model.to(minidl.int64)


def test_accelerators_absent():
    assert minidl.backends.mps.is_available() is False and minidl.backends.mps.is_built() is False
    assert minidl.accelerator.is_available() is False and minidl.accelerator.current_accelerator() is None
    assert minidl.cuda.is_available() is False
    minidl.backends.cudnn.benchmark = True  # a switch programs set; harmless


def test_elementwise_equality_and_type():
    a, b = minidl.tensor([1, 2, 3]), minidl.tensor([1, 0, 3])
    assert (a == b).tolist() == [True, False, True] and (a != b).tolist() == [False, True, False]
    assert (a == 2).tolist() == [False, True, False] and (a == np.array([1, 2, 3])).data.all()
    assert (a == b).type(minidl.float).sum().item() == 2.0
    assert a.type() == "torch.LongTensor" and minidl.ones(1).type() == "torch.FloatTensor"
    assert (a == "x") is False and (a != None) is True  # noqa: E711
    assert a in [b, a] and len({a, b}) == 2  # hashing stays by identity
    assert ["x", "y", "z"][minidl.tensor([0.1, 5.0, 0.2]).argmax(0)] == "y" and int(minidl.tensor(3.7)) == 3
    with pytest.raises(TypeError, match="integer tensors of a single element"):
        [1, 2][minidl.tensor([1, 0])]
    with pytest.raises(TypeError, match="float32 tensor of shape"):
        [1, 2][minidl.tensor(1.0)]


# --------------------------------------------------------------------------------------------- as_torch
def test_as_torch_maps_the_course_modules(tmp_path):
    program = tmp_path / "p.py"
    program.write_text(
        "import torch, torchvision\n"
        "from torch.utils.data import DataLoader, Dataset, TensorDataset, random_split\n"
        "from torchvision import datasets, transforms\n"
        "from torchvision.transforms import ToTensor, Lambda, Compose, Normalize\n"
        "from torchvision.io import read_image\n"
        "import torch.backends\n"
        "import minidl\n"
        "assert torch is minidl and torch.utils.data.DataLoader is minidl.data.DataLoader\n"
        "assert datasets.FashionMNIST is minidl.vision.datasets.FashionMNIST\n"
        "assert not torch.backends.mps.is_available() and torch.accelerator.current_accelerator() is None\n"
        "from minidl.fast import blas\n"
        "threads = blas.thread_functions() and blas.thread_functions()[0]()\n"
        "result = 'ok'\n")
    from minidl import as_torch
    from minidl.fast import blas

    api = blas.thread_functions()
    before = api[0]() if api else None
    ran = as_torch.run(program)
    assert ran["result"] == "ok"
    if api:  # the run's BLAS is single-threaded (small products), and the count comes back afterwards
        assert ran["threads"] == 1 and api[0]() == before
    assert "torchvision" not in sys.modules or sys.modules["torchvision"] is not minidl.vision


# ----------------------------------------------------------------------- the course's network, both ways
def course_data(n_train=2000, n_test=500):
    """The first images of the real splits."""
    # the `isolated` fixture hides this machine's folders; the real files are looked for where they are
    folder = os.environ.get("MINIDL_DATA") or REAL_SYSTEM_DIR
    try:
        x, y = minidl.datasets.load_fashion_mnist("train", root=folder, download=False)
        xt, yt = minidl.datasets.load_fashion_mnist("test", root=folder, download=False)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST files not on this machine")
    return (x[:n_train], y[:n_train]), (xt[:n_test], yt[:n_test])


def test_course_network_matches_pytorch(tmp_path):
    """Flatten -> 784-512-512-10, SGD lr 1e-3, batch 64, through minidl.vision and DataLoader, against
    PyTorch on the same images, batches and starting weights: the same accuracy within 3 points."""
    torch = pytest.importorskip("torch")
    (x, y), (xt, yt) = course_data()
    raw = tmp_path / "FashionMNIST" / "raw"
    for split, (images, labels) in (("train", (x, y)), ("test", (xt, yt))):
        write(raw / fm.FILES[split][0], idx_bytes(images))
        write(raw / fm.FILES[split][1], idx_bytes(labels.astype(np.uint8)))
    train = DataLoader(datasets.FashionMNIST(tmp_path, train=True, transform=transforms.ToTensor()), batch_size=64)
    test = DataLoader(datasets.FashionMNIST(tmp_path, train=False, transform=transforms.ToTensor()), batch_size=64)

    minidl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 10))
    reference = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                    torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    with torch.no_grad():
        for (_, p), q in zip(model.named_parameters(), reference.parameters()):
            q.copy_(torch.from_numpy(p.data.copy()))
    opt = minidl.optim.SGD(model.parameters(), lr=1e-3)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=1e-3)
    loss_fn, ref_loss_fn = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    for _ in range(2):
        for xb, yb in train:
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
            ref_loss = ref_loss_fn(reference(torch.from_numpy(xb.data)), torch.from_numpy(yb.data))
            ref_loss.backward()
            ref_opt.step()
            ref_opt.zero_grad()
    correct = ref_correct = 0
    with minidl.no_grad(), torch.no_grad():
        for xb, yb in test:
            correct += (model(xb).argmax(1) == yb).type(minidl.float).sum().item()
            ref_correct += (reference(torch.from_numpy(xb.data)).argmax(1) == torch.from_numpy(yb.data)).sum().item()
    accuracy, ref_accuracy = correct / len(xt), ref_correct / len(xt)
    assert accuracy > 0.25  # it learned something: 10 classes, chance is 0.1
    assert abs(accuracy - ref_accuracy) <= 0.03, (accuracy, ref_accuracy)
