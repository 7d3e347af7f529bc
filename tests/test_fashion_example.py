"""End-to-end runs of examples/fashion_mlp.py and examples/fashion_cnn.py: reduced runs (default suite),
the full default runs (``-m slow``), the checks on the command line, and what the figures say."""
import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import Tensor, nn, no_grad, plots
from minidl.datasets import FASHION_MNIST_CLASSES, fashion_mnist, load_fashion_mnist
from minidl.progress import ProgressBar
from minidl.training import evaluate, fit

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MLP, CNN = EXAMPLES / "fashion_mlp.py", EXAMPLES / "fashion_cnn.py"
HAVE_DATA = fashion_mnist.find_files("train") is not None and fashion_mnist.find_files("test") is not None
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
OUTPUTS = ["metrics.json", "accuracy_curve.png", "per_class_accuracy.png", "confusion_matrix.png", "predictions.png", "model.h5"]
CNN_OUTPUTS = OUTPUTS + ["filters.png", "feature_maps.png"]
SMALL_CNN = ["--channels", "4", "8", "--limit-train", "2000", "--epochs", "1", "--seed", "3"]


def run(script, *args, env=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=3600)


def example_module(name):
    """Import examples/<name>.py (they import their neighbour fashion_common, so examples/ goes on the path)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return __import__(name)


def reloaded_accuracy(model, path, channels_first=False):
    """Test accuracy of ``model`` after loading the weights in ``path``."""
    model.load(path)
    images, labels = load_fashion_mnist("test")
    x = images.astype(np.float32) / 255
    _, acc, _ = evaluate(model, x[:, None] if channels_first else x, labels)
    return acc


def check_full_run(result, out, minimum, model, channels_first, outputs):
    assert result.returncode == 0, result.stderr
    for name in outputs:
        assert (out / name).stat().st_size > 1000, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= minimum
    assert len(metrics["epochs"]) == 5 and metrics["settings"]["train_examples"] == 60_000
    assert sum(map(sum, metrics["confusion_matrix"])) == 10_000
    assert "Shirt" in result.stdout and "expected time" in result.stdout
    assert abs(reloaded_accuracy(model, out / "model.h5", channels_first) - metrics["test_accuracy"]) < 1e-9
    return metrics


# --- the full runs the docs describe -----------------------------------------------------------------------

@pytest.mark.slow
@needs_data
def test_mlp_default_run_reaches_86_percent_and_writes_every_output(tmp_path):
    result = run(MLP, "--out", tmp_path)
    metrics = check_full_run(result, tmp_path, 0.86, example_module("fashion_mlp").build_model([128]), False, OUTPUTS)
    assert metrics["settings"]["hidden"] == [128]


@pytest.mark.slow
@needs_data
def test_cnn_default_run_reaches_91_percent_and_writes_every_output(tmp_path):
    mlp = tmp_path / "mlp.json"
    mlp.write_text(json.dumps({"per_class_accuracy": {name: 0.5 for name in FASHION_MNIST_CLASSES}}))
    result = run(CNN, "--out", tmp_path, "--compare", mlp)
    metrics = check_full_run(result, tmp_path, 0.91, example_module("fashion_cnn").build_model(), True, CNN_OUTPUTS)
    assert metrics["settings"]["channels"] == [32, 64] and metrics["settings"]["batch_size"] == 64
    assert "MLP" in result.stdout  # the per-class table has the MLP's column


# --- reduced runs (default suite) ---------------------------------------------------------------------------

@needs_data
def test_mlp_reduced_run_beats_chance_widely_is_reproducible_and_reloads(tmp_path):
    args = ["--epochs", "1", "--limit-train", "3000", "--hidden", "32", "16", "--seed", "7"]
    first, second = run(MLP, *args, "--out", tmp_path / "a"), run(MLP, *args, "--out", tmp_path / "b")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert a["test_accuracy"] > 0.6  # chance is 0.1
    assert a["epochs"][0]["test_loss"] == b["epochs"][0]["test_loss"]
    assert a["confusion_matrix"] == b["confusion_matrix"]
    assert a["settings"]["train_examples"] == 3000 and a["settings"]["limit_train"] == 3000
    assert a["interrupted"] is False
    assert f"data: Fashion-MNIST from {fashion_mnist.find_files('train')[0].parent}\n" in first.stdout
    for name in OUTPUTS:
        assert (tmp_path / "a" / name).stat().st_size > 1000, name
    model = example_module("fashion_mlp").build_model([32, 16])
    assert reloaded_accuracy(model, tmp_path / "a" / "model.h5") == a["test_accuracy"]


@needs_data
def test_cnn_reduced_run_beats_chance_widely_is_reproducible_and_reloads(tmp_path):
    mlp = tmp_path / "mlp_metrics.json"  # an MLP run's per-class accuracy, for the table's second column
    mlp.write_text(json.dumps({"per_class_accuracy": {name: 0.25 + i / 100 for i, name in enumerate(FASHION_MNIST_CLASSES)}}))
    first = run(CNN, *SMALL_CNN, "--out", tmp_path / "a", "--compare", mlp)
    second = run(CNN, *SMALL_CNN, "--out", tmp_path / "b", "--compare", tmp_path / "nowhere.json")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert a["test_accuracy"] > 0.5  # chance is 0.1
    assert a["epochs"] == [dict(e, seconds=e_a["seconds"]) for e, e_a in zip(b["epochs"], a["epochs"])]
    assert a["confusion_matrix"] == b["confusion_matrix"]
    assert a["settings"]["channels"] == [4, 8] and a["settings"]["train_examples"] == 2000
    for name in CNN_OUTPUTS:
        assert (tmp_path / "a" / name).stat().st_size > 1000, name
    model = example_module("fashion_cnn").build_model([4, 8])
    assert reloaded_accuracy(model, tmp_path / "a" / "model.h5", channels_first=True) == a["test_accuracy"]
    images, labels = load_fashion_mnist("test")  # the file also rebuilds the network by itself
    rebuilt = nn.load_model(tmp_path / "a" / "model.h5")
    assert evaluate(rebuilt, images[:, None].astype(np.float32) / 255, labels)[1] == a["test_accuracy"]
    # the progress output names its losses; the per-class table has the MLP's column beside this run's
    assert "loss=" in first.stderr and "accuracy=" in first.stderr and "(running)" in first.stdout
    assert "running means" in first.stdout and "expected time" in first.stdout
    assert first.stdout.startswith(f"data: Fashion-MNIST from {fashion_mnist.find_files('train')[0].parent}\n")
    lines = first.stdout.splitlines()
    assert next(line for line in lines if line.startswith("class")).split() == ["class", "accuracy", "MLP"]
    assert next(line for line in lines if line.startswith("Shirt")).split()[-1] == "0.310"
    # without an MLP run to compare with: one column, and a note saying how to get the other
    assert "no MLP column" in second.stdout and "nowhere.json" in second.stdout
    assert next(line for line in second.stdout.splitlines() if line.startswith("class")).split() == ["class", "accuracy"]


@needs_data
def test_sweep_writes_table_and_figure_and_records_the_training_set(tmp_path):
    result = run(MLP, "--sweep", "--sweep-widths", "8", "16", "--sweep-depths", "1", "2", "--epochs", "1",
                 "--limit-train", "1000", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert [(r["depth"], r["width"]) for r in sweep["results"]] == [(1, 8), (1, 16), (2, 8), (2, 16)]
    assert sweep["results"][0]["parameters"] == 784 * 8 + 8 + 8 * 10 + 10
    assert sweep["limit_train"] == 1000 and sweep["train_examples"] == 1000
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    assert "width   16" in result.stdout


# --- Ctrl-C and SIGTERM: the epochs done are saved, exit status 130, no empty folder ----------------------

def interrupt(script, sig, *args, after):
    """Run ``script`` in a subprocess, send it ``sig`` once a line of its output starts with ``after``."""
    import signal
    import tempfile

    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    with tempfile.TemporaryFile("w+") as err:  # a file, not a pipe: the progress bars cannot fill it and block
        # a shell's background jobs inherit SIGINT ignored: give the example the default, as in a terminal
        proc = subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE, stderr=err,
                                text=True, env=env, cwd=ROOT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        for line in proc.stdout:
            if line.startswith(after):
                proc.send_signal(sig)
                break
        proc.communicate(timeout=600)
        err.seek(0)
        return proc.returncode, err.read()


def check_interrupted_run(code, stderr, out, script, model, outputs, channels_first=False):
    assert code == 130, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"{script.name}: interrupted in epoch ") and "model.h5 of epoch" in last, last
    metrics = json.loads((out / "metrics.json").read_text())
    done = len(metrics["epochs"])
    assert metrics["interrupted"] is True and 1 <= done < metrics["settings"]["epochs"]
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, done + 1))
    assert f"{done} epoch(s) done" in last
    for name in outputs:
        assert (out / name).stat().st_size > 1000, name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    # model.h5 holds the weights of the last finished epoch, not those of the epoch cut short
    assert reloaded_accuracy(model, out / "model.h5", channels_first) == metrics["test_accuracy"]
    assert metrics["test_accuracy"] == metrics["epochs"][-1]["test_accuracy"]


@needs_data
def test_ctrl_c_saves_the_epochs_done_and_exits_130(tmp_path):
    import signal

    out = tmp_path / "o"
    code, stderr = interrupt(MLP, signal.SIGINT, "--limit-train", "300", "--epochs", "500", "--out", out,
                             after="epoch 2:")
    check_interrupted_run(code, stderr, out, MLP, example_module("fashion_mlp").build_model(), OUTPUTS)


@needs_data
def test_sigterm_is_handled_like_ctrl_c_in_the_cnn(tmp_path):
    import signal

    out = tmp_path / "o"
    code, stderr = interrupt(CNN, signal.SIGTERM, "--channels", "2", "2", "--limit-train", "200", "--epochs", "500",
                             "--out", out, after="epoch 1:")
    check_interrupted_run(code, stderr, out, CNN, example_module("fashion_cnn").build_model((2, 2)), CNN_OUTPUTS,
                          channels_first=True)


@needs_data
def test_an_interruption_before_the_first_epoch_ends_saves_nothing_and_leaves_no_folder(tmp_path):
    import signal

    out = tmp_path / "o"
    code, stderr = interrupt(MLP, signal.SIGINT, "--batch-size", "8", "--out", out, after="expected time")
    assert code == 130 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "fashion_mlp.py: interrupted before the first epoch finished: nothing saved"
    assert not out.exists()


@needs_data
def test_an_interrupted_sweep_saves_the_models_done(tmp_path):
    import signal

    out = tmp_path / "o"
    code, stderr = interrupt(MLP, signal.SIGINT, "--sweep", "--sweep-widths", "4", "2000", "--sweep-depths", "1",
                             "--epochs", "30", "--limit-train", "2000", "--out", out, after="depth 1  width    4")
    assert code == 130 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("fashion_mlp.py: interrupted after 1 of 2 models")
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["interrupted"] is True and [r["width"] for r in sweep["results"]] == [4]
    assert (out / "sweep.png").stat().st_size > 1000


def test_fit_interrupted_hands_back_the_epochs_done_with_their_weights():
    from minidl.interrupt import Interrupted

    x, y = tiny_problem()
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 10))
    steps = []

    def forward(xb, _forward=model.forward):  # Ctrl-C in the middle of epoch 3, after 2 finished epochs
        steps.append(model.training)
        if sum(steps) == 2 * 4 + 2:  # 4 training batches an epoch
            raise KeyboardInterrupt
        return _forward(xb)

    model.forward = forward
    with pytest.raises(Interrupted) as caught:
        fit(model, (x, y), (x, y), epochs=5, batch_size=16, lr=0.01, verbose=False)
    history, probs = caught.value.result
    assert str(caught.value) == "interrupted in epoch 3 of 5" and [e["epoch"] for e in history] == [1, 2]
    del model.forward
    loss, acc, again = evaluate(model, x, y)  # the model is back at its weights after epoch 2
    assert (loss, acc) == (history[-1]["test_loss"], history[-1]["test_accuracy"])
    np.testing.assert_array_equal(again, probs)


# --- the command line: a wrong value is refused in one line naming it, before any training ----------------

def assert_one_line_refusal(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "model:" not in result.stdout  # refused before the model was built


@pytest.mark.parametrize("script", [MLP, CNN], ids=["mlp", "cnn"])
def test_a_data_folder_without_the_dataset_is_refused_naming_it(script, tmp_path):
    assert_one_line_refusal(run(script, "--data", "/nonexistent", "--out", tmp_path / "o"), "--data", "/nonexistent")
    assert_one_line_refusal(run(script, "--data", tmp_path, "--out", tmp_path / "o"),
                            "--data", str(tmp_path), "train-images-idx3-ubyte")
    half = tmp_path / "half"  # the training files only: the test files must not come from elsewhere either
    half.mkdir()
    for name in fashion_mnist.FILES["train"]:
        (half / name).write_bytes(b"")
    assert_one_line_refusal(run(script, "--data", half, "--out", tmp_path / "o"), str(half), "t10k-images-idx3-ubyte")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("script, option, value", [
    *[(script, option, "0") for script in (MLP, CNN) for option in ("--limit-train", "--epochs", "--batch-size", "--lr")],
    (MLP, "--limit-train", "-5"), (CNN, "--lr", "-0.001"), (MLP, "--lr", "nan"), (CNN, "--epochs", "two"),
    (CNN, "--seed", "-1"), (MLP, "--hidden", "0"), (CNN, "--channels", "0"),
    (CNN, "--dropout", "1"), (CNN, "--dropout", "-0.1"), (MLP, "--lr-decay", "0"), (CNN, "--lr-decay", "1.5"),
], ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_an_out_of_range_value_is_refused_naming_the_option(script, option, value, tmp_path):
    result = run(script, option, value, "--out", tmp_path / "o")
    assert result.returncode == 2
    assert_one_line_refusal(result, option, value)


def test_an_unknown_kernel_set_is_refused_in_one_line_before_any_work(tmp_path):
    result = run(CNN, "--out", tmp_path / "o", env={"MINIDL_KERNELS": "gpu"})
    assert result.returncode == 2
    assert_one_line_refusal(result, "MINIDL_KERNELS='gpu' is not a kernel set: set it to fast or textbook (both run "
                            "on the CPU), or unset it for the default, fast")


@needs_data
@pytest.mark.parametrize("script", [MLP, CNN], ids=["mlp", "cnn"])
def test_more_training_images_than_there_are_is_refused(script, tmp_path):
    assert_one_line_refusal(run(script, "--limit-train", "60001", "--out", tmp_path / "o"), "--limit-train", "60001", "60000")


@pytest.mark.parametrize("script", [MLP, CNN], ids=["mlp", "cnn"])
def test_an_unwritable_output_folder_is_refused_before_training(script, tmp_path):
    a_file = tmp_path / "passwd"
    a_file.write_text("not a folder\n")
    assert_one_line_refusal(run(script, "--out", a_file / "x"), "--out", str(a_file / "x"), "is a file")
    assert_one_line_refusal(run(script, "--out", a_file), "--out", str(a_file))


@pytest.mark.parametrize("script", [MLP, CNN], ids=["mlp", "cnn"])
def test_a_minidl_data_folder_without_the_dataset_is_a_one_line_error_naming_it(script, tmp_path):
    (tmp_path / "data").mkdir()
    result = run(script, "--out", tmp_path / "o", env={"MINIDL_DATA": str(tmp_path / "data")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: MINIDL_DATA={tmp_path / 'data'}: {tmp_path / 'data'} does not hold the Fashion-MNIST train file(s) "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte (plain or .gz); put them there, or unset MINIDL_DATA"]
    assert not (tmp_path / "o").exists()


def test_corrupt_data_gives_a_one_line_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (data / f"{name}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03garbage")[:-4])  # truncated gzip
    result = run(MLP, "--data", data, "--out", tmp_path / "out")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error:") and "train-images-idx3-ubyte" in result.stderr
    assert not (tmp_path / "out").exists()


# --- what the progress output and the figures say -------------------------------------------------------------

def tiny_problem(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 6, 6), dtype=np.float32)
    y = rng.integers(0, 10, n)
    return x, y


def test_fit_reports_running_means_of_the_training_batches(capsys):
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 10))
    x, y = tiny_problem()
    history, probs = fit(model, (x, y), (x[:20], y[:20]), epochs=2, batch_size=24, lr=1e-2, seed=0)
    out, err = capsys.readouterr()
    assert err.count("loss=") == 2 and err.count("accuracy=") == 2  # one bar per epoch
    assert out.count("train accuracy") == 2 and out.count("(running)") == 2 and "test accuracy" in out
    bar_loss = float(err.splitlines()[0].split("loss=", 1)[1].split()[0])
    assert math.isclose(bar_loss, history[0]["train_loss"], rel_tol=1e-3)
    assert probs.shape == (20, 10)


def test_fit_running_means_weigh_every_example_once():
    """With lr = 1e-12 the weights barely change, so the running means over the batches (24, 24 and the last 16)
    equal the whole training set's loss and accuracy; a mean of the three batch means would not."""
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 10))
    x, y = tiny_problem()
    history, _ = fit(model, (x, y), (x, y), epochs=1, batch_size=24, lr=1e-12, seed=0, verbose=False)
    loss, acc, _ = evaluate(model, x, y)
    assert math.isclose(history[0]["train_loss"], loss, rel_tol=1e-6)
    assert history[0]["train_accuracy"] == acc == history[0]["test_accuracy"]


def test_evaluate_weighs_every_example_once_over_batches_of_unequal_size():
    """64 examples in batches of 24, 24 and 16: the mean over examples, not the mean of the three batch means."""
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 10))
    x, y = tiny_problem()
    loss, acc, probs = evaluate(model, x, y, batch_size=24)
    logits = x.reshape(len(x), -1).astype(np.float64) @ model[1].weight.data.T + model[1].bias.data
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    per_example = -log_p[np.arange(len(y)), y]
    batch_means = [per_example[i:i + 24].mean() for i in (0, 24, 48)]
    assert not math.isclose(np.mean(batch_means), per_example.mean(), rel_tol=1e-4)  # the test can tell them apart
    assert math.isclose(loss, per_example.mean(), rel_tol=1e-5)
    np.testing.assert_allclose(probs, np.exp(log_p), rtol=1e-5, atol=1e-7)  # every example, in order
    assert acc == np.mean(log_p.argmax(axis=1) == y)
    one_batch = evaluate(model, x, y)
    assert math.isclose(loss, one_batch[0], rel_tol=1e-6) and acc == one_batch[1]


def test_progress_bar_says_how_much_time_is_left():
    class Terminal:
        def __init__(self):
            self.text = ""

        def isatty(self):
            return True

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    term = Terminal()
    bar = ProgressBar(total=10, desc="epoch 1/5", file=term, min_interval=0)
    bar.start -= 2.0  # as if two seconds went by for the first 4 items: 3 s left at that rate
    bar.update(4)
    assert "s left" in term.text and "~3s left" in term.text
    bar.update(6)
    bar.close()
    assert "left" not in term.text.rsplit("\r", 1)[1]  # the finished line gives the time taken only


@pytest.fixture
def figures(monkeypatch):
    """Every figure the plots module saves, kept for inspection (and still written)."""
    saved = {}
    original = plots.save_figure

    def keep(fig, path, **kw):
        saved[Path(path).name] = fig
        return original(fig, path, **kw)

    monkeypatch.setattr(plots, "save_figure", keep)
    return saved


def texts(fig):
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def test_per_class_figure_says_what_red_means(figures, tmp_path):
    plots.per_class_accuracy([0.9, 0.5, 0.88], ["a", "b", "c"], tmp_path / "per_class_accuracy.png")
    fig = figures["per_class_accuracy.png"]
    legend = " | ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert "more than 5 points below the mean" in legend
    bars = fig.axes[0].patches
    assert [b.get_facecolor()[:3] for b in bars].count(bars[1].get_facecolor()[:3]) == 1  # only "b" is red


def window_boxes(fig, artists):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    return [a.get_window_extent(renderer) for a in artists]


def test_per_class_values_stand_clear_of_the_bars_and_the_mean_line(figures, tmp_path):
    # values near the mean, where a label written at the bar's end would cross the dashed line
    plots.per_class_accuracy([0.92, 0.93, 0.91, 0.69], list("abcd"), tmp_path / "per_class_accuracy.png")
    fig = figures["per_class_accuracy.png"]
    ax = fig.axes[0]
    values = [t for t in ax.texts if t.get_text().endswith("%")]
    assert [t.get_text() for t in values] == ["92.0%", "93.0%", "91.0%", "69.0%"]
    mean_line = next(line for line in ax.get_lines() if line.get_linestyle() == "--")
    boxes = window_boxes(fig, values + list(ax.patches) + [mean_line, ax])
    labels, bars, mean_box, axes_box = boxes[:4], boxes[4:8], boxes[8], boxes[9]
    for box in labels:
        assert box.x0 > max(mean_box.x1, *(b.x1 for b in bars)) and box.x1 <= axes_box.x1


def test_accuracy_label_sits_inside_the_axes_right_of_every_line(figures, tmp_path):
    history = [dict(epoch=e, train_loss=1 / e, train_accuracy=0.5 + e / 20, test_loss=1.2 / e,
                    test_accuracy=0.55 + e / 25, seconds=1.0) for e in (1, 2, 3, 4, 5)]
    plots.accuracy_curve(history, tmp_path / "accuracy_curve.png")
    fig = figures["accuracy_curve.png"]
    acc_ax = fig.axes[0]
    label = next(t for t in acc_ax.texts if t.get_text() == "75.00%")
    label_box, axes_box, legend_box = window_boxes(fig, [label, acc_ax, acc_ax.get_legend()])
    last_x = max(acc_ax.transData.transform((x, y))[0] for line in acc_ax.get_lines() for x, y in line.get_xydata())
    assert axes_box.x0 < label_box.x0 and label_box.x1 < axes_box.x1
    assert axes_box.y0 < label_box.y0 and label_box.y1 < axes_box.y1
    assert label_box.x0 > last_x + 3  # past the last point (and its marker), so no line runs through it
    assert not label_box.overlaps(legend_box)


def test_accuracy_curve_says_train_is_a_running_mean_and_plots_both_splits(figures, tmp_path):
    history = [dict(epoch=e, train_loss=1 / e, train_accuracy=0.5 + e / 20, test_loss=1.2 / e,
                    test_accuracy=0.55 + e / 25, seconds=1.0) for e in (1, 2, 3)]
    plots.accuracy_curve(history, tmp_path / "accuracy_curve.png")
    acc_ax, loss_ax = figures["accuracy_curve.png"].axes
    for ax, key, scale in ((acc_ax, "accuracy", 100), (loss_ax, "loss", 1)):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == ["train (running mean over the epoch)", "test (at the end of the epoch)"]
        for line, split in zip(ax.get_lines(), ("train", "test")):
            np.testing.assert_allclose(line.get_ydata(), [scale * e[f"{split}_{key}"] for e in history])
    assert "67.00%" in texts(figures["accuracy_curve.png"])  # the last test accuracy, written on the curve


def test_predictions_figure_names_the_classes_and_says_wrong_ones_were_chosen(figures, tmp_path):
    common = example_module("fashion_common")
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 10))
    x, y = tiny_problem(200)
    history, probs = fit(model, (x, y), (x, y), epochs=1, batch_size=50, lr=1e-3, verbose=False)
    images = (x[:, 0] * 255).astype(np.uint8)
    common.write_outputs(model, history, probs, (x, y), images, tmp_path, {}, 0.0, seed=0)
    fig = figures["predictions.png"]
    bar_axes = [ax for ax in fig.axes if ax.patches]
    assert len(bar_axes) == 15
    for ax in bar_axes:  # the names written level, beside the bars, at a readable size
        names = ax.get_yticklabels()
        assert [t.get_text() for t in names] == list(FASHION_MNIST_CLASSES)
        assert all(t.get_fontsize() >= 8 and t.get_rotation() == 0 for t in names)
    title = fig._suptitle.get_text()
    assert "5 misclassified ones picked on purpose" in title and "of 15 shown are wrong" in title
    assert "blue = the true class" in title


@needs_data
def test_sweep_figure_title_says_epochs_and_training_images(figures, tmp_path):
    mlp = example_module("fashion_mlp")
    assert mlp.main(["--sweep", "--sweep-widths", "4", "--sweep-depths", "1", "--epochs", "1",
                     "--limit-train", "300", "--out", str(tmp_path)]) == 0
    titles = " ".join(texts(figures["sweep.png"]))
    assert "1 epoch on 300 training images" in titles and "1 epochs" not in titles


def test_cnn_figures_show_every_filter_and_each_convolution(figures, tmp_path):
    cnn = example_module("fashion_cnn")
    minidl.manual_seed(0)
    model = cnn.build_model([6, 4])
    image = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    stages = cnn.conv_outputs(model, image)
    assert [name for name, _ in stages] == ["conv1 + ReLU", "conv2 + ReLU"]
    assert stages[0][1].shape == (6, 28, 28) and stages[1][1].shape == (4, 14, 14)
    with no_grad():
        first = model[0](Tensor(image[None])).data[0]  # conv1 with its fused ReLU
    np.testing.assert_array_equal(stages[0][1], first)
    assert first.min() == 0 and first.max() > 0
    plots.filters(model[0].weight.data, tmp_path / "filters.png")
    plots.feature_maps(image[0], stages, tmp_path / "feature_maps.png")
    assert sum(1 for ax in figures["filters.png"].axes if ax.images) == 6
    assert sum(1 for ax in figures["feature_maps.png"].axes if ax.images) == 1 + 6 + 4
