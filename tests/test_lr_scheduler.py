"""dtrain.optim.lr_scheduler against torch.optim.lr_scheduler: the lr
sequences over 30 epochs (both are the same Python float arithmetic, so
they must be identical), chaining, closed forms, warnings, errors and
state_dict round trips through dtrain.save/load."""
import math
import warnings

import pytest

import dtrain
import dtrain.optim as optim
from dtrain.optim import lr_scheduler
from helpers import needs_torch, torch

pytestmark = needs_torch

EPOCHS = 30


def lam(e):
    return 0.95 ** e


def lam2(e):
    return 1.0 / (1 + e)


# (name, args, kwargs): one scheduler on a two-group optimizer
SCHEDULERS = [
    ("StepLR", (7,), dict(gamma=0.5)),
    ("StepLR", (1,), {}),
    ("MultiStepLR", ([5, 12, 12, 20],), dict(gamma=0.3)),
    ("ExponentialLR", (0.9,), {}),
    ("CosineAnnealingLR", (10,), dict(eta_min=0.001)),
    ("CosineAnnealingLR", (7,), {}),
    ("LambdaLR", (lam,), {}),
    ("LambdaLR", ([lam, lam2],), {}),
    ("LinearLR", (), dict(start_factor=0.25, total_iters=8)),
    ("LinearLR", (), dict(start_factor=1.0, end_factor=0.1,
                          total_iters=10)),
]


def optimizers(cls="SGD"):
    """The same two-group optimizer in dtrain and torch."""
    d = [dtrain.zeros(2).requires_grad_() for _ in range(2)]
    t = [torch.zeros(2, requires_grad=True) for _ in range(2)]
    dopt = getattr(optim, cls)([{"params": [d[0]]},
                                {"params": [d[1]], "lr": 0.01}], lr=0.1)
    topt = getattr(torch.optim, cls)([{"params": [t[0]]},
                                      {"params": [t[1]], "lr": 0.01}], lr=0.1)
    return dopt, topt


def lrs(opt, scheds, epochs=EPOCHS):
    """Steps optimizer and schedulers `epochs` times, recording every
    group's lr and each scheduler's get_last_lr()."""
    out = [[g["lr"] for g in opt.param_groups]]
    for _ in range(epochs):
        opt.step()
        for s in scheds:
            s.step()
        out.append([g["lr"] for g in opt.param_groups]
                   + [lr for s in scheds for lr in s.get_last_lr()])
    return out


@pytest.mark.parametrize("name,args,kw", SCHEDULERS)
def test_lr_sequence_matches_torch(name, args, kw):
    dopt, topt = optimizers()
    ds = getattr(lr_scheduler, name)(dopt, *args, **kw)
    ts = getattr(torch.optim.lr_scheduler, name)(topt, *args, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the right order warns nothing
        assert lrs(dopt, [ds]) == lrs(topt, [ts])
    assert ds.last_epoch == ts.last_epoch == EPOCHS
    assert ds.base_lrs == ts.base_lrs == [0.1, 0.01]


@pytest.mark.parametrize("first,second", [
    (("LinearLR", (), dict(start_factor=0.1, total_iters=5)),
     ("CosineAnnealingLR", (12,), {})),
    (("StepLR", (4,), dict(gamma=0.5)), ("ExponentialLR", (0.97,), {})),
    (("MultiStepLR", ([3, 9],), {}), ("LambdaLR", (lam,), {})),
])
def test_chained_schedulers_match_torch(first, second):
    dopt, topt = optimizers("Adam")
    dsch = [getattr(lr_scheduler, n)(dopt, *a, **k) for n, a, k in
            (first, second)]
    tsch = [getattr(torch.optim.lr_scheduler, n)(topt, *a, **k)
            for n, a, k in (first, second)]
    assert lrs(dopt, dsch) == lrs(topt, tsch)


@pytest.mark.parametrize("name,args,kw", [SCHEDULERS[i]
                                          for i in (0, 2, 3, 4, 8)])
def test_closed_form_with_epoch_matches_torch(name, args, kw):
    dopt, topt = optimizers()
    ds = getattr(lr_scheduler, name)(dopt, *args, **kw)
    ts = getattr(torch.optim.lr_scheduler, name)(topt, *args, **kw)
    for epoch in (3, 9, 4, 15):
        dopt.step()
        topt.step()
        with pytest.warns(UserWarning, match="epoch parameter"):
            ds.step(epoch)
        with pytest.warns(UserWarning):
            ts.step(epoch)
        assert ds.get_last_lr() == ts.get_last_lr()


def test_resume_with_last_epoch_matches_torch():
    dopt, topt = optimizers()
    for opt in (dopt, topt):
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
    ds = lr_scheduler.CosineAnnealingLR(dopt, 10, last_epoch=4)
    ts = torch.optim.lr_scheduler.CosineAnnealingLR(topt, 10, last_epoch=4)
    assert lrs(dopt, [ds], 10) == lrs(topt, [ts], 10)


def test_step_before_optimizer_step_warns():
    dopt, _ = optimizers()
    sched = lr_scheduler.StepLR(dopt, 2)
    with pytest.warns(UserWarning, match=r"Detected call of "
                      r"`lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
        sched.step()
    dopt2, _ = optimizers()
    sched2 = lr_scheduler.StepLR(dopt2, 2)
    dopt2.step = lambda closure=None: None     # overridden after creation
    with pytest.warns(UserWarning, match="has been overridden"):
        sched2.step()


def test_get_lr_outside_step_warns():
    dopt, _ = optimizers()
    sched = lr_scheduler.ExponentialLR(dopt, 0.5)
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        sched.get_lr()


def test_errors_match_torch():
    dopt, topt = optimizers()
    cases = [
        ("LinearLR", (), dict(start_factor=0)),
        ("LinearLR", (), dict(start_factor=1.5)),
        ("LinearLR", (), dict(end_factor=-0.1)),
        ("LambdaLR", ([lam],), {}),
        ("StepLR", (3,), dict(last_epoch=5)),
    ]
    for name, args, kw in cases:
        with pytest.raises(Exception) as texc:
            getattr(torch.optim.lr_scheduler, name)(topt, *args, **kw)
        with pytest.raises(Exception) as dexc:
            getattr(lr_scheduler, name)(dopt, *args, **kw)
        assert dexc.type is texc.type
        assert str(dexc.value) == str(texc.value)
    with pytest.raises(TypeError, match="^int is not an Optimizer$"):
        lr_scheduler.StepLR(3, 1)


def test_state_dict_keys_match_torch():
    dopt, topt = optimizers()
    for name, args, kw in SCHEDULERS:
        ds = getattr(lr_scheduler, name)(dopt, *args, **kw)
        ts = getattr(torch.optim.lr_scheduler, name)(topt, *args, **kw)
        assert sorted(ds.state_dict()) == sorted(ts.state_dict()), name


@pytest.mark.parametrize("name,args,kw", [SCHEDULERS[i]
                                          for i in (0, 2, 4, 7, 8)])
def test_state_dict_round_trip(name, args, kw, tmp_path):
    """Checkpoint optimizer and scheduler at epoch 10 through
    dtrain.save/load, resume in fresh objects: the lrs continue as in the
    uninterrupted run."""
    ref_opt, _ = optimizers()
    ref = getattr(lr_scheduler, name)(ref_opt, *args, **kw)
    ref_lrs = lrs(ref_opt, [ref])
    opt, _ = optimizers()
    sched = getattr(lr_scheduler, name)(opt, *args, **kw)
    head = lrs(opt, [sched], 10)
    dtrain.save({"optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict()}, tmp_path / "ck")
    ck = dtrain.load(tmp_path / "ck")
    opt2, _ = optimizers()
    sched2 = getattr(lr_scheduler, name)(opt2, *args, **kw)
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    tail = lrs(opt2, [sched2], EPOCHS - 10)
    assert head + tail[1:] == ref_lrs


def test_lambda_state_dict_keeps_callable_objects():
    class Warmup:
        def __init__(self, n):
            self.n = n

        def __call__(self, e):
            return min(1.0, (e + 1) / self.n)

    dopt, _ = optimizers()
    sched = lr_scheduler.LambdaLR(dopt, [lam, Warmup(4)])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None, {"n": 4}]
    other = Warmup(10)
    sched2 = lr_scheduler.LambdaLR(optimizers()[0], [lam, other])
    sched2.load_state_dict(sd)
    assert other.n == 4 and "lr_lambdas" in sd


def test_tensor_lr_is_updated_in_place():
    p = dtrain.zeros(2).requires_grad_()
    lr = dtrain.tensor(0.5)
    opt = optim.SGD([p], lr=lr)
    sched = lr_scheduler.StepLR(opt, 1, gamma=0.5)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] is lr
    assert lr.item() == 0.25
    assert math.isclose(sched.get_last_lr()[0].item(), 0.25)
