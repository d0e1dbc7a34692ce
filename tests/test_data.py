"""dtrain.utils.data: datasets, samplers, DataLoader, collate."""
import numpy as np
import pytest

import dtrain
from dtrain.utils.data import (BatchSampler, DataLoader, Dataset,
                               RandomSampler, SequentialSampler,
                               TensorDataset, random_split)


def test_tensor_dataset_and_loader_batches():
    x = dtrain.arange(10).float().reshape(10, 1)
    y = dtrain.arange(10)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert batches[0][0].shape == (4, 1) and batches[0][1].tolist() == [0, 1, 2, 3]
    assert batches[-1][1].tolist() == [8, 9]
    loader = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True)
    assert len(loader) == 2 and len(list(loader)) == 2


def test_shuffle_is_seeded_and_a_permutation():
    ds = TensorDataset(dtrain.arange(20))
    g1, g2 = dtrain.Generator().manual_seed(3), dtrain.Generator().manual_seed(3)
    a = [b[0].tolist() for b in DataLoader(ds, batch_size=5, shuffle=True, generator=g1)]
    b = [b[0].tolist() for b in DataLoader(ds, batch_size=5, shuffle=True, generator=g2)]
    assert a == b
    flat = sorted(v for batch in a for v in batch)
    assert flat == list(range(20)) and sum(a, []) != list(range(20))


def test_collate_structures():
    class D(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"x": np.full(3, i, np.float32), "y": i, "w": float(i),
                    "name": f"s{i}", "pair": (dtrain.tensor([i]), True)}
    batch = next(iter(DataLoader(D(), batch_size=2)))
    assert batch["x"].shape == (2, 3) and batch["x"].dtype == dtrain.float32
    assert batch["y"].tolist() == [0, 1] and batch["y"].dtype == dtrain.int64
    assert batch["w"].dtype == dtrain.float64
    assert batch["name"] == ["s0", "s1"]
    assert batch["pair"][0].shape == (2, 1) and batch["pair"][1].tolist() == [True, True]


def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    r = list(RandomSampler(range(50), generator=dtrain.Generator().manual_seed(0)))
    assert sorted(r) == list(range(50))
    s = RandomSampler(range(5), replacement=True, num_samples=20)
    assert len(list(s)) == 20 and all(0 <= i < 5 for i in s)
    assert list(BatchSampler(range(5), 2, False)) == [[0, 1], [2, 3], [4]]
    assert list(BatchSampler(range(5), 2, True)) == [[0, 1], [2, 3]]
    loader = DataLoader(range(6), batch_sampler=BatchSampler(range(6), 3, False))
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5]]


def test_random_split():
    parts = random_split(range(10), [7, 3], generator=dtrain.Generator().manual_seed(1))
    assert len(parts[0]) == 7 and len(parts[1]) == 3
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    with pytest.raises(ValueError):
        random_split(range(10), [5, 4])


@pytest.mark.parametrize("kwargs, exc", [
    (dict(batch_size=0), ValueError),
    (dict(batch_size=2, shuffle=True, sampler=SequentialSampler(range(3))), ValueError),
    (dict(batch_sampler=BatchSampler(range(3), 1, False), batch_size=2), ValueError),
    (dict(num_workers=2), NotImplementedError),
])
def test_loader_bad_arguments(kwargs, exc):
    with pytest.raises(exc):
        DataLoader(range(3), **kwargs)


def test_tensor_dataset_bad_input():
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(dtrain.zeros(3), dtrain.zeros(4))
    with pytest.raises(TypeError):
        TensorDataset([1, 2])
