"""Style transfer: the losses (values, zeros at their targets, gradchecks), the optimisation loop on a small
random VGG19, and image reading/writing. Every image here is made by the test itself."""
import numpy as np
import pytest

from minidl import Tensor, gradcheck, no_grad
from minidl import image as imageio
from minidl.style import (LOSS_WEIGHTS, Interrupted, STYLE_LAYERS, TotalVariation, content_loss, default_loss_weights,
                          gram_matrix, style_loss, style_transfer, total_variation_loss)

rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape)


# --- losses -------------------------------------------------------------------------------------------------

def test_gram_matrix_is_feature_correlations_over_positions():
    f = randn(2, 3, 4, 5)
    g = gram_matrix(Tensor(f)).data
    flat = f.reshape(2, 3, 20)
    assert g.shape == (2, 3, 3)
    np.testing.assert_allclose(g, np.einsum("ncp,ndp->ncd", flat, flat) / 20)
    np.testing.assert_allclose(g, g.transpose(0, 2, 1))  # symmetric


def test_gram_matrix_does_not_depend_on_image_size_for_a_repeated_texture():
    tile = randn(1, 4, 3, 3)
    assert np.allclose(gram_matrix(Tensor(tile)).data, gram_matrix(Tensor(np.tile(tile, (1, 1, 4, 2)))).data)


def test_content_and_style_losses_are_zero_at_their_targets_and_positive_elsewhere():
    f = Tensor(randn(1, 4, 6, 5).astype(np.float32))
    assert content_loss(f, f.data.copy()).item() == 0
    targets = [gram_matrix(f).data, gram_matrix(f * 2.0).data]
    assert style_loss([f, f * 2.0], targets).item() == 0
    assert content_loss(f, f.data + 0.1).item() == pytest.approx(0.01, rel=1e-4)
    assert style_loss([f, f], targets).item() > 0


def test_style_loss_averages_mean_squared_gram_differences_over_layers():
    f1, f2 = randn(1, 3, 4, 4), randn(1, 5, 2, 3)
    a1, a2 = randn(1, 3, 3), randn(1, 5, 5)
    expected = (np.mean((gram_matrix(Tensor(f1)).data - a1) ** 2) + np.mean((gram_matrix(Tensor(f2)).data - a2) ** 2)) / 2
    assert style_loss([Tensor(f1), Tensor(f2)], [a1, a2]).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="2 feature maps but 1"):
        style_loss([Tensor(f1), Tensor(f2)], [a1])


def test_total_variation_sums_absolute_neighbour_differences():
    assert total_variation_loss(Tensor(np.full((1, 3, 4, 5), 0.3))).item() == 0
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # one bright pixel: four differences of 1 around it
    assert total_variation_loss(Tensor(x)).item() == pytest.approx(4.0)
    x = randn(2, 3, 4, 5)
    expected = np.abs(np.diff(x, axis=2)).sum() + np.abs(np.diff(x, axis=3)).sum()
    assert total_variation_loss(Tensor(x)).item() == pytest.approx(expected)


P, A1, A2, A3 = randn(1, 3, 4, 4), randn(1, 3, 3), randn(1, 2, 2), gram_matrix(Tensor(randn(1, 3, 2, 2)))


@pytest.mark.parametrize("fn,inputs", [
    (gram_matrix, [randn(2, 3, 4, 5)]),
    (gram_matrix, [randn(1, 4, 1, 3)]),
    (lambda f: content_loss(f, P), [randn(1, 3, 4, 4)]),
    (lambda f1, f2: style_loss([f1, f2], [A1, A2]), [randn(1, 3, 4, 4), randn(1, 2, 3, 2)]),
    (lambda f: style_loss(f * 1.0, A3), [randn(1, 3, 2, 2)]),
    (total_variation_loss, [randn(2, 3, 4, 5)]),
    (total_variation_loss, [randn(1, 1, 1, 4)]),  # a single row: horizontal differences only
], ids=["gram", "gram-1-row", "content", "style-2-layers", "style-1-layer", "tv", "tv-1-row"])
def test_gradcheck(fn, inputs):
    assert gradcheck(fn, *inputs)


def test_losses_keep_float32():
    f = Tensor(randn(1, 3, 4, 4).astype(np.float32), requires_grad=True)
    for loss in (gram_matrix(f).sum(), content_loss(f, np.zeros((1, 3, 4, 4), np.float32)),
                 style_loss(f, np.zeros((1, 3, 3), np.float32)), total_variation_loss(f)):
        assert loss.dtype == np.float32


def test_loss_errors_name_the_shape():
    with pytest.raises(ValueError, match=r"Gram.*\(3, 4\)"):
        gram_matrix(Tensor(randn(3, 4)))
    with pytest.raises(ValueError, match=r"TotalVariation.*\(3, 4, 4\)"):
        total_variation_loss(Tensor(randn(3, 4, 4)))


# --- the optimisation on a small random VGG19 ---------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg():
    from minidl.models import vgg19

    return vgg19(weights=None, seed=0)


@pytest.fixture(scope="module")
def images():
    content = imageio.to_nchw(imageio.painting(32, seed=1))
    style = imageio.to_nchw(imageio.painting(40, seed=2))
    return content, style


def test_default_loss_weights_follow_the_model_preprocessing(vgg):
    assert default_loss_weights(vgg) == LOSS_WEIGHTS["caffe"]

    class Torchish:
        preprocessing = "torch"

    assert default_loss_weights(Torchish())["style_weight"] == LOSS_WEIGHTS["torch"]["style_weight"]
    with pytest.raises(ValueError, match="pass content_weight"):
        default_loss_weights(object())


def test_losses_at_the_start_and_history_layout(vgg, images):
    content, style = images
    seen = []
    result = style_transfer(content, style, vgg, steps=3, snapshot_every=2,
                            callback=lambda step, img, losses: seen.append((step, losses["loss"])))
    h = result.history
    assert h["step"] == [0, 1, 2, 3] and len(h["seconds"]) == 3
    assert h["content"][0] == 0  # starting from the content image: its content loss is zero
    assert h["style"][0] > 0 and h["tv"][0] > 0
    np.testing.assert_allclose(h["loss"], np.add(np.add(h["content"], h["style"]), h["tv"]), rtol=1e-5)
    assert [s for s, _ in seen] == [0, 1, 2, 3] and [v for _, v in seen] == h["loss"]
    assert [s for s, _ in result.snapshots] == [0, 2, 3]
    assert result.image.shape == content.shape and result.image.dtype == np.float32
    assert 0 <= result.image.min() and result.image.max() <= 1


def test_style_loss_is_zero_when_the_style_is_the_image_itself(vgg, images):
    content, _ = images
    result = style_transfer(content, content, vgg, steps=0)
    assert result.history["loss"] == [pytest.approx(result.history["tv"][0])]
    assert result.history["style"][0] == pytest.approx(0, abs=1e-6 * result.history["tv"][0])


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_one_step_lowers_the_loss(vgg, images, optimizer):
    content, style = images
    result = style_transfer(content, style, vgg, optimizer=optimizer, steps=1, init="noise", seed=3)
    first, second = result.history["loss"]
    assert second < first, (optimizer, first, second)


def test_content_only_and_style_only_runs(vgg, images):
    content, style = images
    texture = style_transfer(content, style, vgg, content_layers=(), steps=1, init="noise")
    assert texture.history["content"] == [0.0, 0.0] and texture.history["style"][0] > 0
    reconstruction = style_transfer(content, style, vgg, style_layers=(), content_layers=("block3_conv1",), steps=1,
                                    init="noise")
    assert reconstruction.history["style"] == [0.0, 0.0] and reconstruction.history["content"][0] > 0


def test_weights_are_frozen_during_the_run_and_restored_after(vgg, images):
    content, style = images
    grads_required = []
    style_transfer(content, style, vgg, steps=1,
                   callback=lambda *_: grads_required.append(any(p.requires_grad for p in vgg.parameters())))
    assert grads_required == [False, False]
    assert all(p.requires_grad for p in vgg.parameters()) and all(p.grad is None for p in vgg.parameters())


def test_same_seed_same_image(vgg, images):
    content, style = images
    runs = [style_transfer(content, style, vgg, steps=2, init="noise", seed=s).image for s in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_argument_errors(vgg, images):
    content, style = images
    with pytest.raises(ValueError, match=r"content image must be RGB of shape \(1, 3, H, W\), got \(32, 32, 3\)"):
        style_transfer(imageio.to_hwc(content), style, vgg, steps=1)
    with pytest.raises(ValueError, match="optimizer must be"):
        style_transfer(content, style, vgg, optimizer="sgd")
    with pytest.raises(ValueError, match="nothing to optimise"):
        style_transfer(content, style, vgg, content_layers=(), style_layers=())


def _saved(state):
    """A checkpoint state as it would come back from a file: copies, not the live arrays."""
    copy = dict(state, image=state["image"].copy(), history={k: list(v) for k, v in state["history"].items()},
                snapshots=[(k, img.copy()) for k, img in state["snapshots"]])
    if state["adam"] is not None:
        copy["adam"] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state["adam"].items()}
    return copy


def test_adam_resumed_from_a_checkpoint_ends_bit_identical(vgg, images):
    content, style = images
    straight = style_transfer(content, style, vgg, steps=6, snapshot_every=2, init="noise", seed=1)
    states = []
    style_transfer(content, style, vgg, steps=6, snapshot_every=2, init="noise", seed=1,
                   on_checkpoint=lambda state: states.append(_saved(state)))
    assert [s["step"] for s in states] == [2, 4, 6] and states[0]["adam"]["t"] == 2
    resumed = style_transfer(content, style, vgg, steps=6, snapshot_every=2, init="noise", seed=1, resume=states[0])
    assert np.array_equal(resumed.image, straight.image)
    assert resumed.history["step"] == straight.history["step"] and resumed.history["loss"] == straight.history["loss"]
    assert len(resumed.history["seconds"]) == 6 and "resumed at step 2" in resumed.message
    assert [k for k, _ in resumed.snapshots] == [k for k, _ in straight.snapshots] == [0, 2, 4, 6]
    for (_, a), (_, b) in zip(resumed.snapshots, straight.snapshots):
        assert np.array_equal(a, b)


def test_lbfgs_resumes_from_the_checkpointed_image(vgg, images):
    content, style = images
    states = []
    straight = style_transfer(content, style, vgg, optimizer="lbfgs", steps=4, snapshot_every=2, init="noise",
                              on_checkpoint=lambda state: states.append(_saved(state)))
    assert states[0]["step"] == 2 and states[0]["adam"] is None
    resumed = style_transfer(content, style, vgg, optimizer="lbfgs", steps=4, snapshot_every=2, init="noise",
                             resume=states[0])
    assert resumed.history["step"] == [0, 1, 2, 3, 4] and resumed.history["loss"][:3] == straight.history["loss"][:3]
    assert resumed.history["loss"][4] < resumed.history["loss"][2] and "restarted at step 2" in resumed.message
    with pytest.raises(ValueError, match="checkpoint is of an lbfgs run, not adam"):
        style_transfer(content, style, vgg, steps=4, resume=states[0])
    with pytest.raises(ValueError, match="checkpoint is at step 2, the run has 1 steps"):
        style_transfer(content, style, vgg, optimizer="lbfgs", steps=1, resume=states[0])


def test_ctrl_c_hands_back_the_steps_done(vgg, images):
    content, style = images

    def interrupt_at_3(step, img, losses):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        style_transfer(content, style, vgg, steps=6, snapshot_every=2, callback=interrupt_at_3)
    result = caught.value.result
    assert isinstance(caught.value, KeyboardInterrupt) and result.interrupted
    assert result.history["step"] == [0, 1, 2, 3] and len(result.history["seconds"]) == 3
    assert [k for k, _ in result.snapshots] == [0, 2, 3] and np.array_equal(result.snapshots[-1][1], result.image)
    straight = style_transfer(content, style, vgg, steps=3)
    assert np.array_equal(result.image, straight.image) and "interrupted at step 3 of 6" in result.message


def test_targets_are_computed_without_a_graph(vgg, images):
    content, _ = images
    with no_grad():
        feats = vgg.extract(vgg.preprocess(Tensor(content)), list(STYLE_LAYERS))
    assert all(not f.requires_grad for f in feats.values())


# --- images in and out ---------------------------------------------------------------------------------------

def _gradient_image(h=12, w=20):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x / (w - 1), y / (h - 1), np.full((h, w), 0.25)], axis=2).astype(np.float32)


def test_save_and_load_round_trip(tmp_path):
    img = _gradient_image()
    path = imageio.save_image(tmp_path / "a.png", img, title="hello")
    back = imageio.load_image(path)
    assert back.shape == img.shape and back.dtype == np.float32
    assert np.abs(back - img).max() <= 0.5 / 255 + 1e-6
    from PIL import Image

    assert Image.open(path).text["Title"] == "hello"
    assert not list(tmp_path.glob("*.part"))  # written atomically: no temporary left behind
    imageio.save_image(tmp_path / "b.png", imageio.to_nchw(img))  # NCHW accepted too
    assert np.array_equal(imageio.load_image(tmp_path / "b.png"), back)


def test_load_handles_grayscale_palette_rgba_16bit_and_exif(tmp_path):
    from PIL import Image

    rgb = (_gradient_image() * 255).astype(np.uint8)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    gray = imageio.load_image(tmp_path / "gray.png")
    assert gray.shape == (12, 20, 3) and np.array_equal(gray[..., 0], gray[..., 2])

    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(tmp_path / "pal.png")
    assert imageio.load_image(tmp_path / "pal.png").shape == (12, 20, 3)

    rgba = np.dstack([rgb, np.full((12, 20), 255, np.uint8)])
    rgba[:, :5, 3] = 0  # transparent strip (black underneath) -> white
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    loaded = imageio.load_image(tmp_path / "rgba.png")
    assert np.all(loaded[:, :5] == 1.0) and np.allclose(loaded[:, 5:], rgb[:, 5:] / 255)

    ramp = np.linspace(0, 65535, 12 * 20).reshape(12, 20).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    g16 = imageio.load_image(tmp_path / "g16.png")
    np.testing.assert_allclose(g16[..., 1], ramp / 65535, atol=1e-6)  # scaled, not clipped at 255

    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    assert imageio.load_image(tmp_path / "rot.jpg").shape == (20, 12, 3)


def test_resize_long_side_keeps_the_aspect_ratio():
    img = _gradient_image(30, 60)
    small = imageio.resize_long_side(img, 20)
    assert small.shape == (10, 20, 3) and small.min() >= 0 and small.max() <= 1
    assert imageio.resize_long_side(img, 120).shape == (60, 120, 3)


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    (b"this is not an image", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "cannot read image|not an image"),
])
def test_unreadable_files_raise_image_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(imageio.ImageError, match=message) as info:
        imageio.load_image(path)
    assert "bad.png" in str(info.value) and "\n" not in str(info.value)


def test_truncated_jpeg_is_an_image_error(tmp_path):
    imageio.save_image(tmp_path / "ok.jpg", _gradient_image(64, 64))
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(imageio.ImageError, match="cut.jpg"):
        imageio.load_image(tmp_path / "cut.jpg")


def test_painting_is_deterministic_and_colourful():
    a, b = imageio.painting(48, 64, seed=5), imageio.painting(48, 64, seed=5)
    assert a.shape == (48, 64, 3) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, imageio.painting(48, 64, seed=6))
    assert 0 <= a.min() and a.max() <= 1 and a.std(axis=(0, 1)).min() > 0.05
