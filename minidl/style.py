"""Neural style transfer (Gatys, Ecker & Bethge, 2016): paint a photo in the style of another picture.

The idea: a network trained to recognise objects (VGG19) describes an image at every layer by feature maps.
Deep feature maps say *what* is where (the content); the correlations between feature maps, averaged over
positions, say which textures and colours occur regardless of where (the style). Starting from the content
photo (or noise), the *pixels* of a generated image x are optimised, with the network frozen, so that

    L(x) = w_c · L_content(x) + w_s · L_style(x) + w_tv · L_tv(x)

is small: x's deep features match the content photo's, its feature correlations match the style picture's,
and the total-variation term keeps neighbouring pixels from flickering.

The losses, for feature maps F of one layer, reshaped to (C, M): C channels, M = H·W positions:

- Gram matrix      G = F Fᵀ / M                    (C, C): G_ij = mean over positions of F_i · F_j
- content loss     L_c = mean((F - P)²)            P the content photo's features (here at block5_conv2)
- style loss       L_s = (1/|S|) Σ_{l ∈ S} mean((G_l - A_l)²)    A_l the style picture's Gram at layer l
- total variation  L_tv = Σ |x[i+1, j] - x[i, j]| + Σ |x[i, j+1] - x[i, j]|   (over channels, pixels in [0, 1])

The Gram matrix and the total variation are ``Function``s (forward and backward side by side); the two
mean squared errors reuse ``functional.mse_loss``. Targets are computed once; each step then runs the
network forward to the deepest layer needed and back to the pixels (the weights are frozen, so no weight
gradient is ever computed).

Loss weights depend on how the network expects its input, because activations scale with it: see
``LOSS_WEIGHTS``.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from . import functional as F
from . import kernels
from .optim import Adam
from .autograd import Function, Tensor, no_grad
from .interrupt import Interrupted

CONTENT_LAYERS = ("block5_conv2",)
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

# Default loss weights per input convention of the network (the ``preprocessing`` of its weight file).
#
# "caffe" (Keras's VGG19: BGR, 0-255, mean subtracted): the values of TensorFlow's style-transfer tutorial,
#   which uses exactly these losses and layers.
# "torch" (torchvision's VGG19: RGB in [0, 1], normalised by mean and std): the network sees inputs about
#   255·0.226 ≈ 58 times smaller, and the activations of a ReLU network scale with its input, so its feature
#   maps are some factor s smaller: the content loss (squared features) shrinks by s², the style loss
#   (squared Grams, Grams being squared features) by s⁴. The tutorial's balance is kept by multiplying the
#   content weight by s² and the style weight by s⁴. The two networks were trained separately, so s is not
#   exactly 58; a PyTorch port that swapped Caffe for torchvision weights saw its content loss drop ~10³ and
#   its style loss ~10⁵, i.e. s ≈ 20-30. We take s² = 10³, s⁴ = 10⁶ (s ≈ 32). The total variation is
#   computed on the [0, 1] pixels, the same for both conventions, so its weight does not change.
# Different weights, different network or different layers: run a few steps and compare the three weighted
# parts printed by the progress bar; they should be within an order of magnitude of each other at the start.
LOSS_WEIGHTS = {
    "caffe": {"content_weight": 1e4, "style_weight": 1e-2, "tv_weight": 30.0},
    "torch": {"content_weight": 1e4 * 1e3, "style_weight": 1e-2 * 1e6, "tv_weight": 30.0},
}

# Adam as in TensorFlow's tutorial. β₁ = 0.99 averages the gradient over ~100 steps (a smooth, steady
# drift of the pixels); ε = 0.1 is huge for Adam: where the gradient is tiny, the step shrinks instead of
# being blown up to lr, which keeps flat regions of the image from getting noisy. ``optim.Adam`` adds ε
# where Keras does (before the bias correction), so the early steps are the tutorial's too.
ADAM_DEFAULTS = {"lr": 0.02, "betas": (0.99, 0.999), "eps": 0.1}


# --- the losses -------------------------------------------------------------------------------------------

class TotalVariation(Function):
    """L = Σ |x[..., i+1, j] - x[..., i, j]| + Σ |x[..., i, j+1] - x[..., i, j]| for images (N, C, H, W).

    The anisotropic total variation of TensorFlow's ``tf.image.total_variation`` (a sum, so it grows with
    the number of pixels). It is small when neighbouring pixels agree, and, being an absolute value rather
    than a square, it does not mind a few sharp edges but dislikes high-frequency noise everywhere.

    Backward: with d = x[i+1] - x[i], each pixel appears in two differences, once with + and once with -:
        dL/dx[i] = g · (sign(d[i-1]) - sign(d[i]))      (per direction; sign(0) = 0, a subgradient)
    """

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"total_variation expects images (N, C, H, W), got shape {x.shape}")
        dy = x[:, :, 1:, :] - x[:, :, :-1, :]
        dx = x[:, :, :, 1:] - x[:, :, :, :-1]
        self.sign_y, self.sign_x, self.shape, self.dtype = np.sign(dy), np.sign(dx), x.shape, x.dtype
        return np.asarray(np.abs(dy).sum() + np.abs(dx).sum(), dtype=x.dtype)

    def backward(self, g):
        grad = np.zeros(self.shape, dtype=self.dtype)
        grad[:, :, 1:, :] += self.sign_y
        grad[:, :, :-1, :] -= self.sign_y
        grad[:, :, :, 1:] += self.sign_x
        grad[:, :, :, :-1] -= self.sign_x
        grad *= g
        return (grad,)


def gram_matrix(features):
    """Gram matrices G = F Fᵀ / (H·W) of feature maps (N, C, H, W) -> (N, C, C), on the selected kernels
    (``minidl.use_kernels``; the plain version, with its backward, is ``minidl/textbook/gram.py``)."""
    return kernels.active().gram_matrix(features)


def content_loss(features, target):
    """L_c = mean((F - P)²): the mean squared difference between feature maps and the target's.

    dL/dF = 2 (F - P) / n for n elements (``functional.MSELoss``). Zero exactly when F = P.
    """
    return F.mse_loss(features, _constant(target))


def style_loss(features, target_grams):
    """L_s = (1/|S|) Σ_l mean((G_l - A_l)²), G_l = ``gram_matrix(F_l)``, averaged over the style layers.

    ``features``: a Tensor of feature maps, or a list of them (one per style layer); ``target_grams``: the
    matching Gram matrices (arrays or Tensors) of the style image. Backward: through ``MSELoss``
    (dL/dG_l = 2 (G_l - A_l) / (|S| C_l²)) then ``Gram``.
    """
    if isinstance(features, Tensor):
        features, target_grams = [features], [target_grams]
    if len(features) != len(target_grams) or not features:
        raise ValueError(f"style_loss: got {len(features)} feature maps but {len(target_grams)} target Gram matrices")
    terms = [F.mse_loss(gram_matrix(f), _constant(a)) for f, a in zip(features, target_grams)]
    return _mean(terms)


def total_variation_loss(image):
    """L_tv = Σ |vertical neighbour differences| + Σ |horizontal ones| of images (N, C, H, W)."""
    return TotalVariation.apply(image)


def _mean(scalars):
    """The mean of scalar Tensors (a graph node per addition, so each term gets its gradient)."""
    return sum(scalars[1:], scalars[0]) / len(scalars)


def _constant(x):
    return Tensor(x.data if isinstance(x, Tensor) else np.asarray(x))


# --- the optimisation -------------------------------------------------------------------------------------

@dataclass
class StyleTransferResult:
    """What ``style_transfer`` returns.

    ``image``: the final image, float32 (1, 3, H, W) in [0, 1].
    ``history``: lists indexed by step k = 0 … steps, each about the image after k steps (k = 0 is the
    starting image): ``step``, ``loss`` (the weighted total), its weighted parts ``content``, ``style``,
    ``tv``; and ``seconds``, the time of each step (``steps`` entries, step 1 first).
    ``snapshots``: [(step, image)] every ``snapshot_every`` steps, from step 0, plus the last step.
    ``weights``: the loss weights used; ``message``: how the optimiser stopped; ``interrupted``: True for the
    partial result carried by ``Interrupted`` (``image`` is then the last recorded step's).
    """

    image: np.ndarray
    history: dict
    snapshots: list = field(default_factory=list)
    weights: dict = field(default_factory=dict)
    message: str = ""
    interrupted: bool = False


def preprocessing_convention(model):
    """"caffe" or "torch": the input convention of ``model`` (its ``preprocessing`` attribute)."""
    p = getattr(model, "preprocessing", None)
    if p not in LOSS_WEIGHTS:
        raise ValueError(
            f"cannot tell the input convention of {type(model).__name__} (preprocessing={p!r}, expected one of "
            f"{sorted(LOSS_WEIGHTS)}): pass content_weight, style_weight and tv_weight explicitly"
        )
    return p


def default_loss_weights(model):
    """The default ``content_weight``, ``style_weight`` and ``tv_weight`` for ``model``'s input convention."""
    return dict(LOSS_WEIGHTS[preprocessing_convention(model)])


def style_transfer(content, style, model, *, content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS,
                   content_weight=None, style_weight=None, tv_weight=None, optimizer="adam", steps=1000,
                   lr=ADAM_DEFAULTS["lr"], betas=ADAM_DEFAULTS["betas"], eps=ADAM_DEFAULTS["eps"],
                   init="content", snapshot_every=100, seed=0, callback=None, on_checkpoint=None, resume=None):
    """Optimise an image's pixels to have ``content``'s content and ``style``'s style; see the module doc.

    ``content``, ``style``: float32 RGB images (1, 3, H, W) in [0, 1] (``image.to_nchw`` makes them from
    (H, W, 3)); the style image may have another size. ``model``: a VGG19 from ``minidl.models.vgg19``
    (anything with ``preprocess``, ``extract`` and ``requires_grad_``); its parameters are frozen during
    the run and restored afterwards.

    Weights left at None come from ``LOSS_WEIGHTS`` for the model's ``preprocessing``. ``optimizer``:
    ``"adam"`` (``steps`` Adam steps with ``lr``, ``betas``, ``eps``, pixels clipped to [0, 1] after each)
    or ``"lbfgs"`` (``steps`` iterations of SciPy's L-BFGS-B with bounds [0, 1] on every pixel, as in the
    paper; ``lr``, ``betas`` and ``eps`` are unused, and it may stop earlier once converged).
    ``init``: start from the content image or from uniform noise (drawn with ``seed``).
    ``callback(step, image, losses)`` is called for step 0 (the starting image) up to ``steps``, with the
    current (1, 3, H, W) array (do not modify it; copy it to keep it) and the weighted loss parts
    {"loss", "content", "style", "tv"} of that image.

    Interruption and resumption:
    - ``on_checkpoint(state)`` is called at every snapshot step after the start with everything needed to
      continue the run later: a dict {"step", "image", "history", "snapshots", "optimizer" ("adam" or
      "lbfgs"), "adam" ({"t", "m", "v"}: Adam's step count and moments; None for L-BFGS)}. The arrays are
      the live ones: save or copy them before returning.
    - ``resume=state`` (such a dict, e.g. read back from a file) continues from its step, with the same
      other arguments as the interrupted call. Adam then ends with exactly the image of an uninterrupted
      run. L-BFGS restarts from the saved image with an empty curvature memory (SciPy's L-BFGS-B cannot
      save it), so its next steps are gradient-like and the result differs slightly from an uninterrupted
      run's.
    - Ctrl-C (``KeyboardInterrupt``) during the steps raises ``minidl.interrupt.Interrupted``, a
      ``KeyboardInterrupt`` whose ``.result`` holds the steps done so far (a ``StyleTransferResult`` with
      ``interrupted=True``).

    Returns a ``StyleTransferResult`` (image, history, snapshots, weights, message).
    """
    content = _check_image(content, "content")
    style = _check_image(style, "style")
    if optimizer not in ("adam", "lbfgs"):
        raise ValueError(f"optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    if steps < 0 or snapshot_every < 1:
        raise ValueError(f"need steps >= 0 and snapshot_every >= 1, got {steps} and {snapshot_every}")
    content_layers, style_layers = tuple(content_layers), tuple(style_layers)
    if not content_layers and not style_layers:
        raise ValueError("no content layer and no style layer: nothing to optimise")
    weights = dict(content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight)
    if any(v is None for v in weights.values()):
        defaults = default_loss_weights(model)
        weights = {k: defaults[k] if v is None else float(v) for k, v in weights.items()}
    layers = list(dict.fromkeys(content_layers + style_layers))  # one forward pass serves both

    frozen = [(p, p.requires_grad) for p in model.parameters()]
    model.requires_grad_(False)  # only the pixels get a gradient: no weight-gradient work in the convs
    try:
        with no_grad():  # the targets are constants: computed once, no graph kept
            feats = _features(model, content, content_layers)
            content_targets = [feats[name].data for name in content_layers]
            feats = _features(model, style, style_layers)
            style_targets = [gram_matrix(feats[name]).data for name in style_layers]
            del feats

        def loss_parts(x):
            """The weighted loss parts of image Tensor x (a graph to the pixels when grad is enabled)."""
            feats = _features(model, x, layers)
            zero = Tensor(np.zeros((), dtype=np.float32))
            c = zero
            if content_layers:
                c = content_loss(feats[content_layers[0]], content_targets[0])
                for name, target in zip(content_layers[1:], content_targets[1:]):
                    c = c + content_loss(feats[name], target)
                c = c / len(content_layers)
            s = style_loss([feats[name] for name in style_layers], style_targets) if style_layers else zero
            tv = total_variation_loss(x)
            parts = {"content": c * weights["content_weight"], "style": s * weights["style_weight"],
                     "tv": tv * weights["tv_weight"]}
            parts["loss"] = parts["content"] + parts["style"] + parts["tv"]
            return parts

        run = _Recorder(steps, snapshot_every, callback, on_checkpoint, optimizer)
        if resume is not None:
            x0 = run.resume(resume, content.shape)
        elif init == "content":
            x0 = content.copy()
        else:
            x0 = np.random.default_rng(seed).random(content.shape, dtype=np.float32)
        try:
            if optimizer == "adam":
                image, message = _run_adam(x0, loss_parts, run, steps, lr, betas, eps, resume)
            else:
                image, message = _run_lbfgs(x0, loss_parts, run, steps)
        except KeyboardInterrupt:
            if run.last is None:  # not one step recorded: nothing to hand back
                raise
            partial = run.partial_result(weights)
            raise Interrupted(partial, partial.message) from None
    finally:
        for p, flag in frozen:
            p.requires_grad = flag
    return StyleTransferResult(image=image, history=run.history, snapshots=run.snapshots, weights=weights,
                               message=message)


def _features(model, image, layers):
    x = image if isinstance(image, Tensor) else Tensor(image)
    return model.extract(model.preprocess(x), list(layers))


def _check_image(image, name):
    a = np.asarray(image.data if isinstance(image, Tensor) else image)
    if a.ndim != 4 or a.shape[:2] != (1, 3):
        raise ValueError(
            f"style_transfer: the {name} image must be RGB of shape (1, 3, H, W), got {a.shape} "
            "(minidl.image.to_nchw converts an (H, W, 3) array)"
        )
    if a.dtype.kind != "f":
        raise ValueError(f"style_transfer: the {name} image must hold floats in [0, 1], got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


class _Recorder:
    """Collects the history and the snapshots, and calls the user's callbacks, for either optimiser."""

    HISTORY_KEYS = ("step", "loss", "content", "style", "tv", "seconds")

    def __init__(self, steps, snapshot_every, callback, on_checkpoint, optimizer):
        self.steps, self.every, self.callback = steps, snapshot_every, callback
        self.on_checkpoint, self.optimizer = on_checkpoint, optimizer
        self.history = {k: [] for k in self.HISTORY_KEYS}
        self.snapshots = []
        self.start = 0  # the step a resumed run starts from
        self.last = None  # (step, image copy) of the last step recorded by this call
        self.adam_state = None  # set by _run_adam: () -> {"t", "m", "v"}

    def resume(self, state, shape):
        """Take over the history and snapshots of a checkpointed run; return the image to start from."""
        start = int(state["step"])
        image = np.asarray(state["image"], dtype=np.float32)
        if state["optimizer"] != self.optimizer:
            raise ValueError(f"resume: the checkpoint is of an {state['optimizer']} run, not {self.optimizer}")
        if image.shape != tuple(shape):
            raise ValueError(f"resume: the checkpoint's image has shape {image.shape}, the content image {shape}")
        if not 0 < start <= self.steps or len(state["history"]["step"]) < start:
            raise ValueError(f"resume: the checkpoint is at step {start}, the run has {self.steps} steps")
        # the step-`start` entries are recorded again when the run continues
        self.history = {k: list(state["history"][k][:start]) for k in self.HISTORY_KEYS}
        self.snapshots = [(k, np.asarray(img)) for k, img in state["snapshots"] if k < start]
        self.start = start
        return image.copy()

    def record(self, step, image, parts):
        values = {k: float(v.data if isinstance(v, Tensor) else v) for k, v in parts.items()}
        self.history["step"].append(step)
        for k in ("loss", "content", "style", "tv"):
            self.history[k].append(values[k])
        self.last = (step, image.copy())  # what an interruption hands back (image may change in place)
        if step % self.every == 0 or step == self.steps:
            self.snapshots.append((step, self.last[1]))
        if self.callback is not None:
            self.callback(step, image, values)
        if self.on_checkpoint is not None and step % self.every == 0 and step > self.start:
            self.on_checkpoint({
                "step": step, "image": image, "history": self.history, "snapshots": self.snapshots,
                "optimizer": self.optimizer, "adam": self.adam_state() if self.adam_state else None,
            })

    def finish(self, image):
        """Make sure the last recorded step is a snapshot (an optimiser may stop before ``steps``)."""
        last = self.history["step"][-1]
        if not self.snapshots or self.snapshots[-1][0] != last:
            self.snapshots.append((last, image.copy()))

    def partial_result(self, weights):
        """The steps recorded so far, as a result (for ``Interrupted``)."""
        step, image = self.last
        self.history["seconds"] = self.history["seconds"][:step]  # the timings of steps 1 … step only
        self.finish(image)
        return StyleTransferResult(image=image, history=self.history, snapshots=self.snapshots, weights=weights,
                                   message=f"interrupted at step {step} of {self.steps}", interrupted=True)


def _run_adam(x0, loss_parts, run, steps, lr, betas, eps, resume):
    x = Tensor(x0, requires_grad=True)
    opt = Adam([x], lr=lr, betas=tuple(betas), eps=eps)
    if resume is not None:  # Adam's step count and moments as they were at the checkpoint
        opt.t, opt.state[0] = int(resume["adam"]["t"]), opt.init_state(x)
        opt.state[0]["m"][...], opt.state[0]["v"][...] = resume["adam"]["m"], resume["adam"]["v"]
    # the checkpointed state at step k is taken before the k-th update: t = k, moments of k gradients
    run.adam_state = lambda: {"t": opt.t, "m": opt.state[0]["m"], "v": opt.state[0]["v"]}
    for step in range(run.start, steps):
        start = time.perf_counter()
        parts = loss_parts(x)
        opt.zero_grad()
        parts["loss"].backward()
        compute = time.perf_counter() - start
        # x still holds the image these losses belong to: record it before the update changes it
        run.record(step, x.data, parts)
        start = time.perf_counter()
        opt.step()
        np.clip(x.data, 0.0, 1.0, out=x.data)  # keep a valid image (Adam knows nothing of bounds)
        run.history["seconds"].append(compute + time.perf_counter() - start)
    with no_grad():  # the losses of the final image (one more forward, no backward)
        run.record(steps, x.data, loss_parts(x))
    return x.data, f"{steps} Adam steps" + (f" (resumed at step {run.start})" if run.start else "")


def _run_lbfgs(x0, loss_parts, run, steps):
    """L-BFGS-B on the flattened pixels: SciPy asks for (loss, gradient) at points of its choosing and
    handles the [0, 1] bounds itself (a projected quasi-Newton method), so no clipping is needed."""
    from scipy.optimize import Bounds, minimize

    shape = x0.shape
    recent = []  # [(x, parts, gradient)] of the last evaluations: SciPy's callback only gives the point

    def evaluate(flat):
        for x, parts, grad in reversed(recent):
            if np.array_equal(x, flat):
                return parts, grad
        x = Tensor(flat.reshape(shape).astype(np.float32), requires_grad=True)
        tensors = loss_parts(x)
        tensors["loss"].backward()
        parts = {k: float(v.data) for k, v in tensors.items()}
        recent.append((flat.copy(), parts, x.grad.astype(np.float64).ravel()))  # SciPy works in float64
        del recent[:-3]
        return recent[-1][1], recent[-1][2]

    def fun(flat):
        parts, grad = evaluate(flat)
        return parts["loss"], grad

    flat0 = x0.astype(np.float64).ravel()
    # SciPy's first evaluation is the same point: then found in `recent`
    run.record(run.start, x0, evaluate(flat0)[0])
    if steps == run.start:
        return x0, f"{steps - run.start} L-BFGS-B iterations"
    clock = [time.perf_counter()]

    def on_iteration(xk):
        run.history["seconds"].append(time.perf_counter() - clock[0])
        run.record(len(run.history["seconds"]), xk.reshape(shape).astype(np.float32), evaluate(xk)[0])
        clock[0] = time.perf_counter()

    # ftol = gtol = 0: run all `steps` iterations unless the line search cannot progress any more
    result = minimize(fun, flat0, jac=True, method="L-BFGS-B", bounds=Bounds(0.0, 1.0), callback=on_iteration,
                      options={"maxiter": steps - run.start, "maxfun": 20 * (steps - run.start), "maxcor": 10,
                               "ftol": 0.0, "gtol": 0.0})
    image = result.x.reshape(shape).astype(np.float32)
    run.finish(image)
    restarted = f" (restarted at step {run.start} with an empty curvature memory)" if run.start else ""
    return image, f"{result.nit} L-BFGS-B iterations{restarted} ({result.nfev} evaluations): {result.message}"
