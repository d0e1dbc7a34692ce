"""Dataset, TensorDataset, Subset, random_split."""
import builtins

from ... import _C


class Dataset:
    """A map-style dataset: __getitem__(index) and __len__."""

    def __getitem__(self, index):
        raise NotImplementedError("Dataset subclasses must implement "
                                  "__getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset read by iterating it (__iter__); samplers do not apply."""

    def __iter__(self):
        raise NotImplementedError("IterableDataset subclasses must "
                                  "implement __iter__")


class TensorDataset(Dataset):
    """Sample i is (t[i] for t in tensors); all share their first dim."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for k, t in enumerate(tensors):
            if not isinstance(t, _C.TensorBase):
                raise TypeError(f"TensorDataset: argument {k} is "
                                f"{type(t).__name__}, not a Tensor")
        n = tensors[0].size(0)
        for k, t in enumerate(tensors):
            if t.size(0) != n:
                raise ValueError(f"Size mismatch between tensors: tensor 0 "
                                 f"has {n} rows, tensor {k} has {t.size(0)}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].size(0)


class ConcatDataset(Dataset):
    """Datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        self.cumulative = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative.append(total)

    def __len__(self):
        return self.cumulative[-1] if self.cumulative else 0

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of "
                             f"length {len(self)}")
        for k, end in enumerate(self.cumulative):
            if index < end:
                start = self.cumulative[k - 1] if k else 0
                return self.datasets[k][index - start]


class Subset(Dataset):
    """The samples of `dataset` at `indices`."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = list(indices)

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=None):
    """Splits into non-overlapping Subsets of the given lengths (or
    fractions summing to 1), shuffled by `generator`."""
    from ..._ops.creation import randperm
    n = len(dataset)
    if all(isinstance(x, float) for x in lengths) and \
            abs(builtins.sum(lengths) - 1) < 1e-9:
        sizes = [int(n * f) for f in lengths]
        for i in range(n - builtins.sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if builtins.sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of "
                         "the input dataset!")
    perm = randperm(n, generator=generator).tolist()
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[start:start + length]))
        start += length
    return out
