"""DistributedSampler: each rank reads its own slice of the dataset, with
torch.utils.data.distributed.DistributedSampler's semantics (the same
index lists for the same arguments, given the same permutation).

The one addition: pad=False keeps every sample exactly once across ranks
(ranks then get lengths that differ by at most one), for evaluation
without duplicated samples. torch's padding by repetition is the default.
"""
import math

from ..._ops.creation import Generator, randperm
from .sampler import Sampler


class DistributedSampler(Sampler):
    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True,
                 seed=0, drop_last=False, pad=True):
        if num_replicas is None or rank is None:
            from ... import distributed as dist
            if not dist.is_initialized():
                raise RuntimeError("Requires distributed package to be "
                                   "available (init_process_group) or "
                                   "explicit num_replicas and rank")
            num_replicas = dist.get_world_size() if num_replicas is None \
                else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the "
                             f"interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        self.pad = pad
        self.shuffle = shuffle
        self.seed = seed
        n = len(dataset)
        if not pad:
            # every sample once: rank r takes r, r + R, r + 2R, ...
            self.num_samples = len(range(rank, n, num_replicas))
            self.total_size = n
        elif drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
            self.total_size = self.num_samples * num_replicas
        else:
            self.num_samples = math.ceil(n / num_replicas)
            self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            g = Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if self.pad and not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[
                    :padding]
        elif self.pad:
            indices = indices[:self.total_size]
        mine = indices[self.rank:self.total_size:self.num_replicas]
        assert len(mine) == self.num_samples
        return iter(mine)

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Reshuffles differently each epoch (same on every rank)."""
        self.epoch = epoch
