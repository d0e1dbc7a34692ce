"""DataLoader and default_collate (single process: no worker processes)."""
import collections.abc
import numbers

import numpy as np

from ... import _C
from ..._ops.creation import tensor
from ..._ops.index import stack
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler


def default_collate(batch):
    """Stacks a list of samples the way torch does: tensors and NumPy
    arrays are stacked, numbers become a tensor, and tuples, lists and
    dicts are collated field by field."""
    elem = batch[0]
    if isinstance(elem, _C.TensorBase):
        return stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OUS":
            raise TypeError(f"default_collate: batch must contain tensors, "
                            f"numpy arrays, numbers, dicts or lists; found "
                            f"an array of {elem.dtype}")
        return stack([tensor(b) for b in batch], 0)
    if isinstance(elem, np.generic):
        return tensor(np.array(batch))
    if isinstance(elem, bool):
        return tensor(batch)
    if isinstance(elem, numbers.Integral):
        return tensor(batch)
    if isinstance(elem, float):
        return tensor(batch, dtype=_C.float64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return type(elem)({k: default_collate([d[k] for d in batch])
                           for k in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of "
                               "equal size")
        collated = [default_collate(list(s)) for s in zip(*batch)]
        return tuple(collated) if isinstance(elem, tuple) else collated
    raise TypeError(f"default_collate: batch must contain tensors, numpy "
                    f"arrays, numbers, dicts or lists; found "
                    f"{type(elem).__name__}")


class DataLoader:
    """Iterates a dataset in batches.

    Arguments as torch's: batch_size=1, shuffle=False (a RandomSampler
    seeded by `generator`), sampler, batch_sampler, collate_fn, drop_last.
    num_workers must be 0 (worker processes are not implemented yet);
    pin_memory and the other performance options are accepted and ignored.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None,
                 batch_sampler=None, num_workers=0, collate_fn=None,
                 pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, generator=None, prefetch_factor=None,
                 persistent_workers=False, pin_memory_device=""):
        if num_workers != 0:
            raise NotImplementedError("DataLoader: num_workers > 0 is not "
                                      "supported yet; use num_workers=0")
        self.dataset = dataset
        self.generator = generator
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable and (shuffle or sampler is not None or
                               batch_sampler is not None):
            raise ValueError("DataLoader with IterableDataset: expected "
                             "unspecified shuffle, sampler and batch_sampler")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive "
                                 "with batch_size, shuffle, sampler, and "
                                 "drop_last")
            batch_size, drop_last = None, False
        elif sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with "
                             "shuffle")
        if sampler is None and not self._iterable:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_size is not None and batch_sampler is None and \
                not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.collate_fn = collate_fn or default_collate
        self.num_workers = num_workers

    def __iter__(self):
        if self._iterable:
            yield from self._iter_iterable()
            return
        if self.batch_sampler is None:  # batch_size=None: single samples
            for idx in self.sampler:
                yield self.dataset[idx]
            return
        for indices in self.batch_sampler:
            yield self.collate_fn([self.dataset[i] for i in indices])

    def _iter_iterable(self):
        if self.batch_size is None:
            yield from self.dataset
            return
        batch = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def __len__(self):
        if self._iterable:
            raise TypeError("an IterableDataset has no len()")
        if self.batch_sampler is None:
            return len(self.sampler)
        return len(self.batch_sampler)
