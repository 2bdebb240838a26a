"""The data-set container every data-set plugin returns, and its validation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError

N_PIXELS = 784


def check_images(images, what: str = "images", n_inputs: int = N_PIXELS) -> np.ndarray:
    """Return ``images`` as uint8 [n, n_inputs]; one image alone, or images of any shape whose
    trailing dimensions hold n_inputs pixels ([n, 28, 28]), are accepted too. Refuses other
    sizes, non-numeric data, NaN/inf, fractions and values outside 0..255."""
    arr = np.asarray(images)
    if arr.shape == (0,):                       # an empty list: no images
        return np.zeros((0, n_inputs), dtype=np.uint8)
    if arr.ndim == 1 and arr.shape[0] == n_inputs:
        arr = arr.reshape(1, n_inputs)
    elif arr.ndim >= 2 and math.prod(arr.shape[1:]) == n_inputs:
        arr = arr.reshape(arr.shape[0], n_inputs)
    if arr.ndim != 2 or arr.shape[1] != n_inputs:
        shapes = "[n, 784] or [n, 28, 28]" if n_inputs == N_PIXELS else f"[n, {n_inputs}]"
        raise InputError(f"{what} must have shape {shapes} ({n_inputs} pixels each), got "
                         f"{list(arr.shape)}")
    if arr.shape[0] == 0:
        return np.zeros((0, n_inputs), dtype=np.uint8)
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "iuf":
            raise InputError(f"{what} must be numbers (pixel intensities 0..255), got dtype "
                             f"{arr.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise InputError(f"{what} contain NaN or infinite values")
        if arr.min() < 0 or arr.max() > 255:
            raise InputError(f"{what} must be pixel intensities in [0, 255], "
                             f"got values in [{arr.min()}, {arr.max()}]")
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise InputError(f"{what} must be integer pixel intensities 0..255 (got fractions; "
                             "scale 0..1 images by 255 first)")
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


def check_batch(images, sample_ids=None, n_inputs: int = N_PIXELS) -> tuple[np.ndarray, np.ndarray]:
    """What every backend's ``run`` checks first (one source of truth): the images as uint8
    [B, n_inputs] (``check_images``) and one integer sample id per image, as int64 [B]
    (``None``: 0..B-1)."""
    images = check_images(images, "images", n_inputs)
    ids = np.arange(len(images)) if sample_ids is None else np.asarray(sample_ids)
    if ids.ndim != 1 or len(ids) != len(images):
        raise InputError(f"{len(images)} images but sample ids of shape {list(ids.shape)}: "
                         "give one id per image")
    if len(ids) and ids.dtype.kind not in "iu":
        raise InputError(f"sample ids must be integers, got dtype {ids.dtype}")
    return images, ids.astype(np.int64)


@dataclass
class Dataset:
    """Images as uint8 [n, 784] (row-major 28x28), labels as int64 [n] in 0..9."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    n_classes: int = 10

    def __post_init__(self):
        self.train_images = check_images(self.train_images, f"{self.name} training images")
        self.test_images = check_images(self.test_images, f"{self.name} test images")
        self.train_labels = np.asarray(self.train_labels, dtype=np.int64)
        self.test_labels = np.asarray(self.test_labels, dtype=np.int64)
        for split, imgs, labels in (("training", self.train_images, self.train_labels),
                                    ("test", self.test_images, self.test_labels)):
            if labels.shape != (imgs.shape[0],):
                raise InputError(f"{self.name}: {split} labels have shape {list(labels.shape)}, "
                                 f"expected [{imgs.shape[0]}]")
            if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
                raise InputError(f"{self.name}: {split} labels outside 0..{self.n_classes - 1}")

    def validation_split(self, n_val: int) -> "Dataset":
        """Hold out the last ``n_val`` training samples as the evaluation split (for choosing
        hyperparameters without looking at the test set)."""
        if not 0 < n_val < len(self.train_labels):
            raise InputError(f"{self.name}: validation must be in 1..{len(self.train_labels) - 1}, "
                             f"got {n_val}")
        k = len(self.train_labels) - n_val
        return Dataset(f"{self.name}[validation {n_val}]", self.train_images[:k],
                       self.train_labels[:k], self.train_images[k:], self.train_labels[k:],
                       self.n_classes)

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "Dataset":
        """The first ``n_train`` / ``n_test`` samples (``None`` keeps all)."""
        return Dataset(self.name, self.train_images[:n_train], self.train_labels[:n_train],
                       self.test_images[:n_test], self.test_labels[:n_test], self.n_classes)
