"""Offline digit datasets for the examples.

- load_digits(): the 8x8 handwritten digits (1797 images) that
  scikit-learn ships as sklearn/datasets/data/digits.csv.gz; read straight
  from the installed package, without importing scikit-learn.
- load_mnist(directory): the standard MNIST IDX files (train-images-idx3-
  ubyte, train-labels-idx1-ubyte, t10k-..., optionally .gz).

Both return (x_train, y_train, x_test, y_test) as NumPy arrays: images
float32 (N, 1, H, W) scaled to [0, 1], labels int64.
"""
import gzip
import importlib.util
import os
import struct

import numpy as np


def _sklearn_digits_path():
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the 8x8 digits come with scikit-learn: pip install scikit-learn "
            "(or pass --data-dir with MNIST IDX files)")
    root = list(spec.submodule_search_locations)[0]
    return os.path.join(root, "datasets", "data", "digits.csv.gz")


def load_digits(test_fraction=0.2, seed=0):
    with gzip.open(_sklearn_digits_path(), "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = (data[:, :64] / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
    y = data[:, 64].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file (too short)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic "
                         f"{raw[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} values, "
                         f"found {body.size} (truncated?)")
    return body.reshape(dims)


def _find(directory, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{directory}: no {stem}[.gz]")


def load_mnist(directory):
    parts = []
    for split in ("train", "t10k"):
        images = _read_idx(_find(directory, f"{split}-images-idx3-ubyte"))
        labels = _read_idx(_find(directory, f"{split}-labels-idx1-ubyte"))
        if len(images) != len(labels):
            raise ValueError(f"{directory}: {split} has {len(images)} images "
                             f"but {len(labels)} labels")
        parts += [(images[:, None].astype(np.float32) / 255.0),
                  labels.astype(np.int64)]
    return tuple(parts)


def load(data_dir=None):
    """MNIST from data_dir when given, else the bundled 8x8 digits."""
    return load_mnist(data_dir) if data_dir else load_digits()
