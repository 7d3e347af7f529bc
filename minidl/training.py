"""The training loop and the evaluation of a classifier, shared by the Fashion-MNIST examples.

``fit`` is the loop every example in a course writes: for each mini-batch, forward, loss, ``zero_grad``,
``backward``, ``step``; after each epoch, the loss and accuracy on the whole training and test sets.
Two losses are reported, and they are different numbers:

- the progress bar's ``running loss`` is the mean of the mini-batch losses seen so far in the epoch,
  each computed while the weights were still changing (and in training mode, e.g. with dropout on);
- the summary line's ``train loss`` is the loss of the whole training set with the weights as they are at
  the end of the epoch, in evaluation mode (what Keras calls the loss in ``evaluate``).

So the running loss of epoch 1 is higher than its train loss: it averages over the early batches too.
"""
import time

import numpy as np

from . import functional as F
from . import optim
from .autograd import Tensor, no_grad
from .data import DataLoader
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
            probs.append(F.softmax(logits).data)
    probs = np.concatenate(probs)
    return sum(losses) / len(y), accuracy(probs.argmax(axis=1), y), probs


def fit(model, train_data, test_data, *, epochs, batch_size, lr, optimizer="adam", seed=0, verbose=True):
    """Train ``model`` with cross-entropy on ``train_data = (x, y)``; measure both splits after each epoch.

    ``optimizer``: "adam" (``optim.Adam``) or "sgd" (``optim.SGD`` with momentum 0.9). ``seed`` fixes the
    order of the shuffled batches. Returns ``(history, test_probs)``: one dict per epoch (``epoch``,
    ``train_loss``, ``train_accuracy``, ``test_loss``, ``test_accuracy``, ``seconds`` of training) and the
    test set's class probabilities after the last epoch.
    """
    opt = OPTIMIZERS[optimizer](model.parameters(), lr)
    loader = DataLoader(*train_data, batch_size=batch_size, shuffle=True, seed=seed)
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        bar = ProgressBar(loader, desc=f"epoch {epoch}/{epochs}", unit="batch", disable=not verbose)
        loss_sum = 0.0
        for i, (xb, yb) in enumerate(bar, start=1):
            loss = F.cross_entropy(model(Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            bar.set_postfix(**{"running loss": loss_sum / i})
        seconds = time.perf_counter() - start
        train_loss, train_acc, _ = evaluate(model, *train_data)
        test_loss, test_acc, test_probs = evaluate(model, *test_data)
        history.append(dict(epoch=epoch, running_loss=loss_sum / len(loader), train_loss=train_loss,
                            train_accuracy=train_acc, test_loss=test_loss, test_accuracy=test_acc, seconds=seconds))
        if verbose:
            print(f"epoch {epoch}: train loss {train_loss:.4f}  train accuracy {train_acc:.4f}  "
                  f"test loss {test_loss:.4f}  test accuracy {test_acc:.4f}  ({seconds:.1f}s training)", flush=True)
    return history, test_probs
