"""Label assignment and classification (PAPER.md section 4d, BindsNET evaluation semantics)."""

from __future__ import annotations

import numpy as np

from .errors import InputError


def assign_labels(counts: np.ndarray, labels: np.ndarray, n_classes: int = 10):
    """Each neuron's class: the class whose samples made it fire most on average.

    Returns ``(assignments [N], proportions [N, C], rates [N, C])``; a neuron that never fired is
    assigned -1 and takes no part in classification.
    """
    counts = np.asarray(counts, dtype=np.float64)
    labels = np.asarray(labels)
    if counts.ndim != 2 or counts.shape[0] != labels.shape[0]:
        raise InputError(f"spike counts {list(counts.shape)} and labels {list(labels.shape)} "
                         "do not match")
    rates = np.zeros((counts.shape[1], n_classes))
    for c in range(n_classes):
        members = labels == c
        if members.any():
            rates[:, c] = counts[members].sum(axis=0) / members.sum()
    totals = rates.sum(axis=1, keepdims=True)
    proportions = np.divide(rates, totals, out=np.zeros_like(rates), where=totals > 0)
    assignments = np.where(totals[:, 0] > 0, np.argmax(proportions, axis=1), -1)
    return assignments.astype(np.int64), proportions, rates


def predict_all_activity(counts: np.ndarray, assignments: np.ndarray, n_classes: int = 10):
    """Per class, the mean spike count of the neurons assigned to it; predict the argmax
    (ties: the lowest class)."""
    counts = np.asarray(counts, dtype=np.float64)
    scores = np.zeros((counts.shape[0], n_classes))
    for c in range(n_classes):
        members = assignments == c
        if members.any():
            scores[:, c] = counts[:, members].sum(axis=1) / members.sum()
    return np.argmax(scores, axis=1)


def predict_proportion_weighting(counts, assignments, proportions, n_classes: int = 10):
    """Per class, spikes weighted by each assigned neuron's class proportion, averaged."""
    counts = np.asarray(counts, dtype=np.float64)
    scores = np.zeros((counts.shape[0], n_classes))
    for c in range(n_classes):
        members = assignments == c
        if members.any():
            scores[:, c] = (counts[:, members] * proportions[members, c]).sum(axis=1) / members.sum()
    return np.argmax(scores, axis=1)


def predict(counts, assignments, proportions, classifier: str = "all-activity", n_classes=10):
    if classifier == "all-activity":
        return predict_all_activity(counts, assignments, n_classes)
    if classifier == "proportion-weighting":
        return predict_proportion_weighting(counts, assignments, proportions, n_classes)
    raise InputError(f"unknown classifier {classifier!r}; known: all-activity, proportion-weighting")
