"""Training parity with torch: the same MLP and CNN, the same initial
weights and batches, 20 steps of SGD with momentum and of AdamW, give the
same losses and final weights within 1e-4 relative (float32)."""
import numpy as np
import pytest

import dtrain
import dtrain.nn as dnn
import dtrain.nn.functional as dF
from helpers import torch

pytestmark = pytest.mark.skipif(torch is None, reason="torch is the reference")

STEPS = 20


def mlp(lib):
    return lib.nn.Sequential(lib.nn.Linear(64, 48), lib.nn.ReLU(),
                             lib.nn.Linear(48, 32), lib.nn.GELU(),
                             lib.nn.Linear(32, 10))


def cnn(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2),
                         # no bias before BatchNorm: it would get only
                         # rounding noise as gradient, which AdamW amplifies
                         nn.Conv2d(8, 16, 3, padding=1, bias=False),
                         nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 2 * 2, 24), nn.ReLU(),
                         nn.Linear(24, 10))


def optimizers(lib, params, kind):
    if kind == "sgd":
        return lib.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-4)
    return lib.optim.AdamW(params, lr=3e-3, weight_decay=0.05)


def batches(shape, seed=0, distinct=4):
    """STEPS batches cycling through a few fixed ones, so the loss can
    fall (fresh random labels every step would be unlearnable)."""
    rng = np.random.default_rng(seed)
    fixed = [(rng.standard_normal(shape).astype(np.float32),
              rng.integers(0, 10, shape[0])) for _ in range(distinct)]
    for step in range(STEPS):
        yield fixed[step % distinct]


@pytest.mark.parametrize("arch, shape", [(mlp, (16, 64)), (cnn, (8, 1, 8, 8))],
                         ids=["mlp", "cnn"])
@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_training_matches_torch(arch, shape, kind):
    dtrain.manual_seed(0)
    dm, tm = arch(dtrain), arch(torch)
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                        for k, v in dm.state_dict().items()})
    dopt = optimizers(dtrain, dm.parameters(), kind)
    topt = optimizers(torch, tm.parameters(), kind)
    dlosses, tlosses = [], []
    for x, y in batches(shape):
        dloss = dF.cross_entropy(dm(dtrain.tensor(x)), dtrain.tensor(y))
        dopt.zero_grad()
        dloss.backward()
        dopt.step()
        tloss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)),
                                                  torch.from_numpy(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        dlosses.append(dloss.item())
        tlosses.append(tloss.item())
    np.testing.assert_allclose(dlosses, tlosses, rtol=1e-4,
                               err_msg="per-step losses")
    assert dlosses[-1] < dlosses[0]  # it learned something
    tsd = tm.state_dict()
    for k, v in dm.state_dict().items():
        np.testing.assert_allclose(v.float().numpy(), tsd[k].float().numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=k)
