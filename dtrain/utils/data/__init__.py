"""dtrain.utils.data: datasets, samplers and the DataLoader, as in
torch.utils.data (single-process loading)."""
from .dataloader import DataLoader, default_collate
from .distributed import DistributedSampler
from .dataset import (ConcatDataset, Dataset, IterableDataset, Subset,
                      TensorDataset, random_split)
from .sampler import (BatchSampler, RandomSampler, Sampler,
                      SequentialSampler, SubsetRandomSampler)

__all__ = ["Dataset", "IterableDataset", "ConcatDataset", "TensorDataset", "Subset",
           "random_split", "Sampler", "SequentialSampler", "RandomSampler",
           "SubsetRandomSampler", "BatchSampler", "DataLoader",
           "default_collate", "DistributedSampler"]
