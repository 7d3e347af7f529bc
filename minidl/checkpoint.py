"""Checkpoints: save a long run's state at intervals, atomically, and pick it up again after an interruption.

A checkpoint is one HDF5 file holding named arrays and a JSON ``info`` dict (step, settings, loss history,
anything JSON can hold). ``model`` and ``optimizer`` are stored under ``model/`` and ``optimizer/``:

    save(path, arrays=None, info=None, model=None, optimizer=None)   # written atomically
    ckpt = load(path)                     # Checkpoint(path, arrays, info); CheckpointError naming the file
    ckpt.restore(model=None, optimizer=None)   # copy the saved state back into them

e.g. one checkpoint per epoch:

    checkpoint.save(out / "checkpoint.h5", model=model, optimizer=opt, info={"epoch": epoch, "settings": s})
    ...
    ckpt = checkpoint.load(out / "checkpoint.h5")
    ckpt.restore(model=model, optimizer=opt)
    start = ckpt.info["epoch"] + 1

The file is written under a temporary name and renamed when complete, so an interruption while saving
leaves the previous checkpoint intact. A missing file, a file that is not a checkpoint, or one that does not
fit the model or optimizer raises ``CheckpointError`` with the file named, before anything is changed.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .fileio import atomic_path

FORMAT = "minidl checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or does not fit what it should be restored into."""


@dataclass
class Checkpoint:
    """What ``load`` returns: ``arrays`` {name: ndarray} (including ``model/...`` and ``optimizer/...``)
    and ``info``, the JSON dict given to ``save``."""

    path: Path
    arrays: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def restore(self, model=None, optimizer=None):
        """Copy the saved parameters into ``model`` and the saved buffers into ``optimizer``.

        Everything is checked before anything is changed: on a ``CheckpointError`` both are left as they were.
        """
        states = _optimizer_states(optimizer, self.arrays, self.info.get("optimizer"), self.path) \
            if optimizer is not None else None
        if model is not None:
            state = {k[len("model/"):]: v for k, v in self.arrays.items() if k.startswith("model/")}
            try:
                model.load_state_dict(state, source=f"checkpoint {self.path}")
            except (KeyError, ValueError) as e:
                raise CheckpointError(str(e).strip("\"'")) from None
        if optimizer is not None:
            optimizer.state = states
            if self.info["optimizer"].get("t") is not None:
                optimizer.t = self.info["optimizer"]["t"]
            if self.info["optimizer"].get("lr") is not None:  # as a schedule left it (older files: unchanged)
                optimizer.lr = self.info["optimizer"]["lr"]
        return self


def save(path, arrays=None, info=None, model=None, optimizer=None):
    """Write ``arrays``, ``info`` (JSON-able) and the state of ``model`` and ``optimizer`` to ``path``."""
    import h5py

    arrays = dict(arrays or {})
    info = dict(info or {})
    if model is not None:
        arrays.update({f"model/{name}": a for name, a in model.state_dict().items()})
    if optimizer is not None:
        opt_arrays, info["optimizer"] = _optimizer_state(optimizer)
        arrays.update(opt_arrays)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["info"] = json.dumps(info)
            for name, a in arrays.items():
                f.create_dataset(name, data=np.asarray(a))
    return Path(path)


def load(path):
    """Read a checkpoint written by ``save``; ``CheckpointError`` naming the file if it cannot be used."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file {path}")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise CheckpointError(f"{path} is not a minidl checkpoint (an HDF5 file without the checkpoint mark)")
            if int(f.attrs.get("format_version", 0)) > FORMAT_VERSION:
                raise CheckpointError(f"{path}: checkpoint format {f.attrs['format_version']} is newer than this "
                                      "minidl reads; update minidl")
            info = json.loads(f.attrs["info"])
            arrays = {}
            f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset)
                         else None)
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError) as e:  # not HDF5, truncated, damaged
        raise CheckpointError(f"{path} is not a readable minidl checkpoint ({_one_line(e)})") from None
    return Checkpoint(path, arrays, info)


def _optimizer_state(optimizer):
    """({"optimizer/<i>/<buffer>": array}, {"type", "t", "lr"}) from an optimizer's per-parameter buffers."""
    arrays = {}
    for i, state in enumerate(optimizer.state):
        for key, value in (state or {}).items():
            if key != "scratch" and value is not None:  # scratch space holds nothing worth keeping
                arrays[f"optimizer/{i}/{key}"] = value
    return arrays, {"type": type(optimizer).__name__, "t": getattr(optimizer, "t", None), "lr": optimizer.lr}


def _optimizer_states(optimizer, arrays, info, path):
    """The per-parameter state list for ``optimizer`` from the saved arrays, checked against its parameters."""
    kind = type(optimizer).__name__
    if not info:
        raise CheckpointError(f"{path} holds no optimizer state")
    if info.get("type") != kind:
        raise CheckpointError(f"{path}: holds the state of a {info.get('type')} optimizer, not of {kind}")
    saved_indices = {int(k.split("/")[1]) for k in arrays if k.startswith("optimizer/")}
    if saved_indices and max(saved_indices) >= len(optimizer.params):
        raise CheckpointError(f"{path}: holds optimizer state for {max(saved_indices) + 1} parameters, the "
                              f"optimizer has {len(optimizer.params)}")
    states = []
    for i, p in enumerate(optimizer.params):
        saved = {k.split("/")[2]: v for k, v in arrays.items() if k.startswith(f"optimizer/{i}/")}
        if not saved:
            states.append(None)  # this parameter had had no step yet
            continue
        state = optimizer.init_state(p)
        for key, value in saved.items():
            if key not in state or np.shape(state[key]) != value.shape:
                raise CheckpointError(f"{path}: optimizer buffer {i}/{key} of shape {value.shape} does not fit "
                                      f"parameter {i} of shape {p.shape}")
            # each entry as the optimizer makes it: an array of its own dtype, or a number (Adagrad's step count)
            made = state[key]
            state[key] = value.astype(made.dtype) if isinstance(made, np.ndarray) else type(made)(value)
        states.append(state)
    return states


def _one_line(e):
    return " ".join(str(e).split())
