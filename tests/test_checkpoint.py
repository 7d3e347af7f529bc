"""minidl.checkpoint: a model and its optimizer saved mid-training continue exactly; bad files are refused."""
import numpy as np
import pytest

import minidl
from minidl import Tensor, checkpoint, nn, optim
from minidl import functional as F
from minidl.checkpoint import CheckpointError


def make(seed=0):
    minidl.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, optim.Adam(model.parameters(), lr=0.05)


def train(model, opt, steps, start=0):
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16)) for _ in range(10)]
    for x, y in batches[start:start + steps]:
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_resume_from_a_checkpoint_is_bit_identical(tmp_path):
    model, opt = make()
    train(model, opt, 10)
    straight = {k: v.copy() for k, v in model.state_dict().items()}

    model, opt = make()
    train(model, opt, 4)
    checkpoint.save(tmp_path / "c.h5", model=model, optimizer=opt, info={"step": 4, "note": "ü"})
    model, opt = make(seed=7)  # different weights: the checkpoint must overwrite all of them
    ckpt = checkpoint.load(tmp_path / "c.h5")
    ckpt.restore(model=model, optimizer=opt)
    assert ckpt.info["step"] == 4 and ckpt.info["note"] == "ü" and opt.t == 4
    train(model, opt, 6, start=4)
    for name, value in model.state_dict().items():
        assert np.array_equal(value, straight[name]), name
    assert [p.name for p in tmp_path.iterdir()] == ["c.h5"]  # no temporary file left


def test_extra_arrays_round_trip(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    checkpoint.save(tmp_path / "c.h5", arrays={"image": a, "snapshots/0003": a * 2}, info={"k": [1, 2]})
    ckpt = checkpoint.load(tmp_path / "c.h5")
    assert np.array_equal(ckpt.arrays["image"], a) and np.array_equal(ckpt.arrays["snapshots/0003"], a * 2)
    assert ckpt.info == {"k": [1, 2]}


def test_bad_files_are_refused_naming_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file .*missing.h5"):
        checkpoint.load(tmp_path / "missing.h5")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt is not a readable minidl checkpoint"):
        checkpoint.load(tmp_path / "notes.txt")
    model, opt = make()
    model.save(tmp_path / "model.h5")  # an HDF5 file, but not a checkpoint
    with pytest.raises(CheckpointError, match="model.h5 is not a minidl checkpoint"):
        checkpoint.load(tmp_path / "model.h5")
    checkpoint.save(tmp_path / "c.h5", model=model, optimizer=opt)
    data = (tmp_path / "c.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.h5"):
        checkpoint.load(tmp_path / "cut.h5")


def test_a_checkpoint_that_does_not_fit_changes_nothing(tmp_path):
    model, opt = make()
    train(model, opt, 2)
    checkpoint.save(tmp_path / "c.h5", model=model, optimizer=opt)
    minidl.manual_seed(3)
    other = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    other_opt = optim.Adam(other.parameters())
    before = {k: v.copy() for k, v in other.state_dict().items()}
    ckpt = checkpoint.load(tmp_path / "c.h5")
    with pytest.raises(CheckpointError, match="c.h5.*shape"):
        ckpt.restore(model=other, optimizer=other_opt)
    with pytest.raises(CheckpointError, match="c.h5.*Adam optimizer, not of SGD"):
        ckpt.restore(model=model, optimizer=optim.SGD(model.parameters(), lr=0.1))
    assert all(np.array_equal(v, before[k]) for k, v in other.state_dict().items())
    assert other_opt.t == 0 and other_opt.state == [None] * 4


OPTIMIZERS = {
    "sgd momentum": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
    "sgd nesterov": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "rmsprop centered momentum": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "adagrad lr_decay": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.3),
    "adam": lambda ps: optim.Adam(ps, lr=0.05),
}


def train_with_schedule(model, opt, scheduler, start, stop):
    """Steps start … stop - 1 of one fixed run; the schedule multiplies the rate after every third step."""
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16)) for _ in range(10)]
    for step in range(start, stop):
        x, y = batches[step]
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 3 == 2:
            scheduler.step()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_and_the_lr_schedule_resume_bit_identically(tmp_path, name):
    def make_all(seed):
        model, _ = make(seed)
        opt = OPTIMIZERS[name](model.parameters())
        return model, opt, optim.ExponentialLR(opt, gamma=0.5)

    model, opt, scheduler = make_all(0)
    train_with_schedule(model, opt, scheduler, 0, 10)
    straight = {k: v.copy() for k, v in model.state_dict().items()}

    model, opt, scheduler = make_all(0)
    train_with_schedule(model, opt, scheduler, 0, 5)  # the rate was halved once, after step 3
    saved_state = opt.state
    checkpoint.save(tmp_path / "c.h5", model=model, optimizer=opt)
    model, opt, scheduler = make_all(7)
    checkpoint.load(tmp_path / "c.h5").restore(model=model, optimizer=opt)
    assert opt.lr == 0.5 * OPTIMIZERS[name]([nn.Parameter(np.zeros(1))]).lr
    for saved, restored in zip(saved_state, opt.state):
        for key, value in saved.items():  # each entry keeps its own type: float32 buffers, an int step count
            if key != "scratch":
                assert type(restored[key]) is type(value), key
                assert getattr(restored[key], "dtype", None) == getattr(value, "dtype", None), key
    train_with_schedule(model, opt, scheduler, 5, 10)
    for key, value in model.state_dict().items():
        assert np.array_equal(value, straight[key]), key
