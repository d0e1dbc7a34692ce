"""DistributedSampler: torch's index lists for every (size, replicas,
drop_last, shuffle) case. For shuffled cases torch's own sampler is run
with dtrain's permutation patched in, so everything but the generator is
compared exactly."""
import pytest

import dtrain
from dtrain.utils.data import DataLoader, DistributedSampler
from helpers import needs_torch, torch

CASES = [(n, r, dl) for n in (0, 1, 5, 10, 11, 17) for r in (1, 2, 3, 4)
         for dl in (False, True)]


@needs_torch
@pytest.mark.parametrize("n, replicas, drop_last", CASES)
@pytest.mark.parametrize("shuffle", [False, True])
def test_matches_torch(n, replicas, drop_last, shuffle, monkeypatch):
    from torch.utils.data.distributed import DistributedSampler as TS
    if n == 0 and not drop_last:
        pytest.skip("torch divides by zero padding an empty dataset")
    data = list(range(n))
    for epoch in (0, 3):
        ours = []
        for rank in range(replicas):
            s = DistributedSampler(data, replicas, rank, shuffle=shuffle,
                                   seed=7, drop_last=drop_last)
            s.set_epoch(epoch)
            ours.append((list(s), len(s)))
        perm = dtrain.randperm(n, generator=dtrain.Generator().manual_seed(
            7 + epoch)).tolist()
        monkeypatch.setattr(torch, "randperm",
                            lambda m, generator=None: torch.tensor(perm))
        for rank in range(replicas):
            t = TS(data, replicas, rank, shuffle=shuffle, seed=7,
                   drop_last=drop_last)
            t.set_epoch(epoch)
            assert ours[rank] == (list(t), len(t)), (rank, epoch)


def test_epochs_reshuffle_identically_on_every_rank():
    data = list(range(20))
    a = [DistributedSampler(data, 2, r, seed=1) for r in range(2)]
    first = [list(s) for s in a]
    assert sorted(first[0] + first[1]) == data
    for s in a:
        s.set_epoch(1)
    second = [list(s) for s in a]
    assert second != first and sorted(second[0] + second[1]) == data


def test_pad_false_keeps_every_sample_once():
    data = list(range(11))
    parts = [list(DistributedSampler(data, 3, r, shuffle=False, pad=False))
             for r in range(3)]
    assert sorted(sum(parts, [])) == data
    assert [len(p) for p in parts] == [4, 4, 3]
    shuffled = [list(DistributedSampler(data, 3, r, pad=False))
                for r in range(3)]
    assert sorted(sum(shuffled, [])) == data


def test_with_dataloader_and_errors():
    loader = DataLoader(list(range(8)), batch_size=2,
                        sampler=DistributedSampler(list(range(8)), 2, 1,
                                                   shuffle=False))
    assert [b.tolist() for b in loader] == [[1, 3], [5, 7]]
    with pytest.raises(ValueError, match="Invalid rank"):
        DistributedSampler(list(range(4)), 2, 2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(list(range(4)))
