"""The training loop and the evaluation of a classifier, shared by the Fashion-MNIST examples.

``fit`` is the loop every example in a course writes: for each mini-batch, forward, loss, ``zero_grad``,
``backward``, ``step``; after each epoch, the loss and accuracy on the whole test set.

The training set's loss and accuracy are the ones Keras's ``fit`` reports: running means over the epoch's
mini-batches, each batch measured by its forward pass in training mode, while the weights were still
changing. They cost nothing (the forward pass computed them anyway), where a second pass over the whole
training set after each epoch would add a quarter to the CNN's epoch. So the train accuracy of an epoch
lags behind what the weights at its end would score: it averages the earlier, worse batches too.
The test set is measured after the epoch, with the weights as they are then, in evaluation mode.
"""
import time

import numpy as np

from . import functional as F
from . import optim
from .autograd import Tensor, no_grad
from .data import DataLoader
from .interrupt import Interrupted
from .metrics import accuracy
from .progress import ProgressBar

OPTIMIZERS = {
    "adam": lambda params, lr: optim.Adam(params, lr=lr),
    "sgd": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9),
}


def evaluate(model, x, y, batch_size=1000):
    """Mean cross-entropy, accuracy and the class probabilities over a whole split, in ``eval()`` mode.

    No graph is recorded (``no_grad``), so memory stays that of one batch of activations.
    """
    model.eval()
    losses, probs = [], []
    with no_grad():
        for xb, yb in DataLoader(x, y, batch_size=batch_size):
            logits = model(Tensor(xb))
            losses.append(F.cross_entropy(logits, yb).item() * len(yb))
            probs.append(F.softmax(logits, dim=1).data)
    probs = np.concatenate(probs)
    return sum(losses) / len(y), accuracy(probs.argmax(axis=1), y), probs


def fit(model, train_data, test_data, *, epochs, batch_size, lr, optimizer="adam", lr_decay=1.0, seed=0,
        verbose=True):
    """Train ``model`` with cross-entropy on ``train_data = (x, y)``; measure the test set after each epoch.

    ``optimizer``: "adam" (``optim.Adam``) or "sgd" (``optim.SGD`` with momentum 0.9). ``lr_decay`` γ
    multiplies the learning rate after each epoch (``optim.ExponentialLR``): epoch e trains with lr · γᵉ⁻¹.
    ``seed`` fixes the order of the shuffled batches. Returns ``(history, test_probs)``: one dict per epoch
    (``epoch``, ``train_loss`` and ``train_accuracy``, the running means over the epoch's examples (module
    docstring), ``test_loss``, ``test_accuracy``, ``seconds`` of training) and the test set's class
    probabilities after the last epoch.

    Ctrl-C (``KeyboardInterrupt``) after the first epoch raises ``minidl.interrupt.Interrupted`` with
    ``.result = (history, test_probs)`` of the epochs finished, and the model put back to its weights at the
    end of the last of them, so that what is saved matches the history. Before that, it propagates as is.
    """
    opt = OPTIMIZERS[optimizer](model.parameters(), lr)
    scheduler = optim.ExponentialLR(opt, lr_decay)
    loader = DataLoader(*train_data, batch_size=batch_size, shuffle=True, seed=seed)
    history, finished = [], None
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            model.train()
            bar = ProgressBar(loader, desc=f"epoch {epoch}/{epochs}", unit="batch", disable=not verbose)
            loss_sum, correct, seen = 0.0, 0, 0
            for xb, yb in bar:
                logits = model(Tensor(xb))
                loss = F.cross_entropy(logits, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                # a mean over examples, not batches: the last batch of an epoch may be smaller
                loss_sum += loss.item() * len(yb)
                correct += int(np.sum(logits.data.argmax(axis=1) == yb))
                seen += len(yb)
                bar.set_postfix(loss=loss_sum / seen, accuracy=correct / seen)
            seconds = time.perf_counter() - start
            scheduler.step()
            test_loss, test_acc, test_probs = evaluate(model, *test_data)
            history.append(dict(epoch=epoch, train_loss=loss_sum / seen, train_accuracy=correct / seen,
                                test_loss=test_loss, test_accuracy=test_acc, seconds=seconds))
            # the last finished epoch: what an interruption hands back
            finished = (epoch, {name: a.copy() for name, a in model.state_dict().items()}, test_probs)
            if verbose:
                print(f"epoch {epoch}: train loss {loss_sum / seen:.4f}  train accuracy {correct / seen:.4f} "
                      f"(running)  test loss {test_loss:.4f}  test accuracy {test_acc:.4f}  ({seconds:.1f}s "
                      "training)", flush=True)
    except KeyboardInterrupt:
        if finished is None:
            raise
        epoch, weights, test_probs = finished
        model.load_state_dict(weights)
        raise Interrupted((history[:epoch], test_probs), f"interrupted in epoch {epoch + 1} of {epochs}") from None
    return history, test_probs
