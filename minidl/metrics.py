"""Classification metrics on NumPy arrays of integer labels."""
import numpy as np


def accuracy(predicted, target):
    """Fraction of predictions equal to the target labels."""
    return float(np.mean(np.asarray(predicted) == np.asarray(target)))


def confusion_matrix(predicted, target, num_classes):
    """``m[t, p]`` = number of examples of true class t predicted as class p (rows: truth, columns: guess)."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(target), np.asarray(predicted)), 1)
    return m


def per_class_accuracy(confusion):
    """Accuracy within each true class: the diagonal over the row sums (recall); NaN for absent classes."""
    confusion = np.asarray(confusion)
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / totals, np.nan)
