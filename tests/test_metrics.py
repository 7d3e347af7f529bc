import numpy as np

from minidl.metrics import accuracy, confusion_matrix, per_class_accuracy


def test_metrics_on_a_hand_made_example():
    target = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 1])
    assert accuracy(predicted, target) == 3 / 6
    m = confusion_matrix(predicted, target, 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [1, 2, 0], [0, 1, 0]])
    np.testing.assert_allclose(per_class_accuracy(m), [0.5, 2 / 3, 0.0])
    assert np.isnan(per_class_accuracy(confusion_matrix(predicted, target, 4))[3])
