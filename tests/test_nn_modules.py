"""dtrain.nn: the Module system, layers' defaults and shapes against torch,
state_dict and its errors, hooks, init, clip_grad."""
from collections import OrderedDict

import numpy as np
import pytest

import dtrain
import dtrain.nn as nn
import dtrain.nn.functional as F
from helpers import needs_torch, torch


def copy_into_torch(dmodel, tmodel):
    """Loads dtrain weights into an equally-shaped torch model."""
    sd = {k: torch.from_numpy(v.float().numpy().copy())
          for k, v in dmodel.state_dict().items()}
    tmodel.load_state_dict(sd)


# ---------------------------------------------------------------- Module

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
        self.register_buffer("scale", dtrain.tensor(2.0))
        self.register_buffer("tmp", dtrain.zeros(1), persistent=False)

    def forward(self, x):
        return self.head(self.pool(self.bn(self.conv(x)).relu()))


def test_registration_and_traversal():
    m = Net()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias",
                     "head.1.weight", "head.1.bias"]
    assert [n for n, _ in m.named_buffers()] == [
        "scale", "tmp", "bn.running_mean", "bn.running_var",
        "bn.num_batches_tracked"]
    assert "tmp" not in m.state_dict() and "scale" in m.state_dict()
    assert [n for n, _ in m.named_children()] == ["conv", "bn", "pool", "head"]
    assert len(list(m.modules())) == 7
    assert m.get_submodule("head.1").out_features == 10
    assert m.get_parameter("conv.bias").shape == (4,)
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, shared)
    assert len(list(seq.parameters())) == 2  # duplicates removed


def test_train_eval_and_zero_grad():
    m = Net()
    assert m.training and m.bn.training
    m.eval()
    assert not m.training and not m.bn.training
    m.train()
    out = m(dtrain.randn(2, 1, 8, 8))
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_state_dict_roundtrip_and_errors(tmp_path):
    a, b = Net(), Net()
    dtrain.save(a.state_dict(), tmp_path / "m.dt")
    b.load_state_dict(dtrain.load(tmp_path / "m.dt"))
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert v.tolist() == w.tolist(), k
    sd = a.state_dict()
    sd["conv.weight"] = dtrain.zeros(4, 1, 5, 5)
    with pytest.raises(RuntimeError, match="size mismatch for conv.weight"):
        b.load_state_dict(sd)
    sd = a.state_dict()
    del sd["bn.bias"]
    sd["extra"] = dtrain.zeros(1)
    with pytest.raises(RuntimeError, match='Missing key.*"bn.bias"'):
        b.load_state_dict(sd)
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["bn.bias"] and res.unexpected_keys == ["extra"]
    with pytest.raises(TypeError):
        b.load_state_dict([1, 2])


def test_setattr_rules():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight"):
        m.weight = dtrain.zeros(2, 2)
    m.weight = nn.Parameter(dtrain.zeros(2, 2))
    assert m.weight.tolist() == [[0, 0], [0, 0]]
    m.extra = nn.Linear(1, 1)
    assert "extra" in dict(m.named_children())
    del m.extra
    assert "extra" not in dict(m.named_children())
    with pytest.raises(AttributeError):
        m.nothing


def test_forward_hooks():
    m = nn.Linear(3, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: calls.append("pre"))
    h2 = m.register_forward_hook(lambda mod, args, out: out * 0)
    out = m(dtrain.ones(1, 3))
    assert calls == ["pre"] and out.tolist() == [[0.0, 0.0]]
    h1.remove()
    h2.remove()
    assert m(dtrain.ones(1, 3)).abs().sum().item() > 0


def test_containers():
    seq = nn.Sequential(OrderedDict([("a", nn.ReLU()), ("b", nn.Tanh())]))
    assert isinstance(seq[1], nn.Tanh) and len(seq[0:1]) == 1
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.Linear(1, 2)).extend([nn.ReLU()])
    assert len(ml) == 3 and len(list(ml.parameters())) == 4
    md = nn.ModuleDict({"x": nn.Linear(1, 1)})
    md["y"] = nn.ReLU()
    assert list(md.keys()) == ["x", "y"] and "x" in md
    with pytest.raises(IndexError):
        seq[5]


def test_module_to_dtype_keeps_parameter_objects():
    m = nn.Linear(3, 2)
    w = m.weight
    m.double()
    assert m.weight is w and w.dtype == dtrain.float64 and w.requires_grad
    assert m(dtrain.ones(1, 3, dtype=dtrain.float64)).dtype == dtrain.float64
    with pytest.raises(TypeError):
        m.to(dtrain.int64)


# ---------------------------------------------------------------- layers vs torch

LAYER_CASES = [
    ("Linear", lambda lib: lib.nn.Linear(5, 3), (4, 5)),
    ("Linear-nobias", lambda lib: lib.nn.Linear(5, 3, bias=False), (2, 7, 5)),
    ("Conv2d", lambda lib: lib.nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 2, 7, 7)),
    ("MaxPool2d", lambda lib: lib.nn.MaxPool2d(2), (2, 3, 6, 6)),
    ("AvgPool2d", lambda lib: lib.nn.AvgPool2d(3, stride=2), (1, 2, 7, 7)),
    ("AdaptiveAvgPool2d", lambda lib: lib.nn.AdaptiveAvgPool2d((2, 3)), (2, 2, 5, 7)),
    ("BatchNorm1d", lambda lib: lib.nn.BatchNorm1d(4), (6, 4)),
    ("BatchNorm2d", lambda lib: lib.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    ("LayerNorm", lambda lib: lib.nn.LayerNorm(6), (3, 6)),
    ("ReLU", lambda lib: lib.nn.ReLU(), (3, 4)),
    ("GELU", lambda lib: lib.nn.GELU(), (3, 4)),
    ("Tanh", lambda lib: lib.nn.Tanh(), (3, 4)),
    ("Sigmoid", lambda lib: lib.nn.Sigmoid(), (3, 4)),
    ("Softmax", lambda lib: lib.nn.Softmax(dim=1), (3, 4)),
    ("LogSoftmax", lambda lib: lib.nn.LogSoftmax(dim=-1), (3, 4)),
    ("Flatten", lambda lib: lib.nn.Flatten(), (2, 3, 4)),
    ("Identity", lambda lib: lib.nn.Identity(7), (2, 3)),
]


@needs_torch
@pytest.mark.parametrize("name, make, shape", LAYER_CASES,
                         ids=[c[0] for c in LAYER_CASES])
def test_layer_matches_torch(name, make, shape):
    dm, tm = make(dtrain), make(torch)
    copy_into_torch(dm, tm)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    dx = dtrain.tensor(x).requires_grad_()
    tx = torch.from_numpy(x).requires_grad_()
    dy, ty = dm(dx), tm(tx)
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    g = np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(np.float32)
    dy.backward(dtrain.tensor(g))
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-4,
                               atol=1e-5)
    for (n, p), (_, q) in zip(dm.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=n)
    for (n, b), (_, c) in zip(dm.named_buffers(), tm.named_buffers()):
        np.testing.assert_allclose(b.float().numpy(), c.float().numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=n)


@needs_torch
def test_embedding_and_dropout_modules():
    e = nn.Embedding(10, 3, padding_idx=0)
    assert e.weight[0].tolist() == [0, 0, 0]
    out = e(dtrain.tensor([[0, 3], [3, 9]]))
    assert out.shape == (2, 2, 3)
    out.sum().backward()
    assert e.weight.grad[0].tolist() == [0, 0, 0]
    assert e.weight.grad[3].tolist() == [2, 2, 2]
    d = nn.Dropout(0.5)
    x = dtrain.ones(1000)
    assert 300 < (d(x) == 0).sum().item() < 700
    d.eval()
    assert d(x) is x


@needs_torch
@pytest.mark.parametrize("name, make, args", [
    ("CrossEntropyLoss", lambda lib: lib.nn.CrossEntropyLoss(label_smoothing=0.1), "cls"),
    ("NLLLoss", lambda lib: lib.nn.NLLLoss(), "cls"),
    ("MSELoss", lambda lib: lib.nn.MSELoss(reduction="sum"), "same"),
    ("BCEWithLogitsLoss", lambda lib: lib.nn.BCEWithLogitsLoss(), "prob"),
])
def test_loss_modules_match_torch(name, make, args):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    if args == "cls":
        y = rng.integers(0, 5, 8)
        dy, ty = dtrain.tensor(y), torch.from_numpy(y)
    else:
        y = rng.random((8, 5)).astype(np.float32)
        dy, ty = dtrain.tensor(y), torch.from_numpy(y)
    dl = make(dtrain)(dtrain.tensor(x), dy)
    tl = make(torch)(torch.from_numpy(x), ty)
    np.testing.assert_allclose(dl.item(), tl.item(), rtol=1e-5)


# ---------------------------------------------------------------- init, clip

def test_default_init_statistics():
    dtrain.manual_seed(0)
    lin = nn.Linear(1000, 500)
    bound = 1 / np.sqrt(1000)  # kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), ...)
    w = lin.weight.detach().numpy()
    assert w.min() >= -bound and w.max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound
    conv = nn.Conv2d(16, 8, 3)
    fan_in = 16 * 9
    assert abs(conv.weight.detach().numpy().std() - 1 / np.sqrt(3 * fan_in)) < 0.01
    assert nn.init.calculate_gain("relu") == pytest.approx(np.sqrt(2))
    with pytest.raises(ValueError):
        nn.init.kaiming_uniform_(dtrain.zeros(3))


def test_clip_grad_norm():
    p1 = nn.Parameter(dtrain.zeros(3))
    p2 = nn.Parameter(dtrain.zeros(4))
    p1.grad = dtrain.tensor([3.0, 0.0, 0.0])
    p2.grad = dtrain.tensor([0.0, 4.0, 0.0, 0.0])
    total = nn.utils.clip_grad_norm_([p1, p2], 1.0)
    assert total.item() == pytest.approx(5.0)
    assert p1.grad.tolist() == pytest.approx([0.6, 0, 0], abs=1e-6)
    assert p2.grad.tolist() == pytest.approx([0, 0.8, 0, 0], abs=1e-6)
    total = nn.utils.clip_grad_norm_([p1, p2], 10.0)  # no change below max
    assert total.item() == pytest.approx(1.0, rel=1e-5)
    p1.grad = dtrain.tensor([float("inf"), 0, 0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p1], 1.0, error_if_nonfinite=True)
    nn.utils.clip_grad_value_([p2], 0.5)
    assert max(p2.grad.tolist()) <= 0.5


def test_bad_inputs_name_the_problem():
    lin = nn.Linear(4, 3)
    with pytest.raises(RuntimeError, match="4.*5|5.*4"):
        lin(dtrain.ones(2, 5))
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="expected 4D input"):
        bn(dtrain.ones(2, 3))
    with pytest.raises(RuntimeError):
        F.cross_entropy(dtrain.ones(2, 3), dtrain.tensor([0.0, 1.0]))
    with pytest.raises((IndexError, RuntimeError)):
        F.cross_entropy(dtrain.ones(2, 3), dtrain.tensor([0, 7]))
