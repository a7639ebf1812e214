"""Learning-rate schedules against torch.optim.lr_scheduler, on random settings."""

import io
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
lr_scheduler = torch.optim.lr_scheduler

from dlcc.numpy_nn import optim  # noqa: E402
from dlcc.numpy_nn.schedules import (  # noqa: E402
    CosineWithWarmup,
    OneCycleLR,
    StepLR,
    cosine_with_warmup_lr,
    onecycle_lr,
)


def make_optimizers(kind="SGD", lr=0.1, momentum=0.9):
    """One of ours and the same torch optimiser, each over one small parameter."""
    pair = [(np.zeros(2), np.zeros(2))]
    torch_params = [torch.zeros(2, requires_grad=True)]
    if kind == "SGD":
        return optim.SGD(pair, lr=lr, momentum=momentum), torch.optim.SGD(
            torch_params, lr=lr, momentum=momentum
        )
    return optim.Adam(pair, lr=lr), torch.optim.Adam(torch_params, lr=lr)


def lr_sequences(ours, theirs, steps):
    """(our lrs, torch lrs), the first taken before any step()."""
    ours_lrs, torch_lrs = [ours.optimizer.lr], [theirs.get_last_lr()[0]]
    for _ in range(steps):
        theirs.optimizer.step()  # torch warns when the scheduler steps first
        ours.step()
        theirs.step()
        ours_lrs.append(ours.optimizer.lr)
        torch_lrs.append(theirs.get_last_lr()[0])
    return ours_lrs, torch_lrs


@pytest.mark.parametrize("seed", range(10))
def test_step_lr_matches_torch(seed):
    rng = np.random.default_rng(seed)
    lr, step_size, gamma = float(rng.uniform(0.01, 1)), int(rng.integers(1, 8)), float(rng.random())
    ours_optimizer, torch_optimizer = make_optimizers(lr=lr)
    ours = StepLR(ours_optimizer, step_size=step_size, gamma=gamma)
    theirs = lr_scheduler.StepLR(torch_optimizer, step_size=step_size, gamma=gamma)
    ours_lrs, torch_lrs = lr_sequences(ours, theirs, steps=30)
    np.testing.assert_allclose(ours_lrs, torch_lrs, rtol=1e-12)
    assert ours.get_lr() == ours_optimizer.lr


def draw_one_cycle(rng):
    return {
        "max_lr": float(10 ** rng.uniform(-3, 0)),
        "total_steps": int(rng.integers(10, 80)),
        "pct_start": float(rng.uniform(0.15, 0.5)),
        "div_factor": float(rng.uniform(2, 50)),
        "final_div_factor": float(10 ** rng.uniform(1, 5)),
        "anneal_strategy": str(rng.choice(["cos", "linear"])),
        "three_phase": bool(rng.random() < 0.5),
    }


@pytest.mark.parametrize("seed", range(20))
def test_one_cycle_matches_torch_lr_and_momentum(seed):
    rng = np.random.default_rng(seed)
    kwargs = draw_one_cycle(rng)
    kind = "SGD" if seed % 2 else "Adam"
    ours_optimizer, torch_optimizer = make_optimizers(kind, lr=0.5)
    ours = OneCycleLR(ours_optimizer, **kwargs)
    theirs = lr_scheduler.OneCycleLR(torch_optimizer, **kwargs)

    def ours_momentum():
        return ours_optimizer.momentum if kind == "SGD" else ours_optimizer.betas[0]

    def torch_momentum():
        group = torch_optimizer.param_groups[0]
        return group["momentum"] if kind == "SGD" else group["betas"][0]

    ours_lrs, torch_lrs = [ours_optimizer.lr], [theirs.get_last_lr()[0]]
    ours_momenta, torch_momenta = [ours_momentum()], [torch_momentum()]
    for _ in range(kwargs["total_steps"]):  # torch allows exactly total_steps calls
        torch_optimizer.step()
        ours.step()
        theirs.step()
        ours_lrs.append(ours_optimizer.lr)
        torch_lrs.append(theirs.get_last_lr()[0])
        ours_momenta.append(ours_momentum())
        torch_momenta.append(torch_momentum())
    # All but the lr after the last step, where torch extrapolates past min_lr (documented).
    np.testing.assert_allclose(ours_lrs[:-1], torch_lrs[:-1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours_momenta[:-1], torch_momenta[:-1], rtol=1e-12)
    min_lr = kwargs["max_lr"] / kwargs["div_factor"] / kwargs["final_div_factor"]
    assert ours_lrs[-1] == pytest.approx(min_lr, rel=1e-12)
    if kind == "Adam":
        assert ours_optimizer.betas[1] == 0.999

    with pytest.raises(ValueError, match=r"OneCycleLR: stepped .* total_steps is"):
        ours.step()
    with pytest.raises(ValueError):
        theirs.step()


def test_one_cycle_without_momentum_cycling_leaves_momentum_alone():
    ours_optimizer, _ = make_optimizers("SGD", momentum=0.5)
    OneCycleLR(ours_optimizer, max_lr=1.0, total_steps=10, cycle_momentum=False)
    assert ours_optimizer.momentum == 0.5
    assert ours_optimizer.lr == pytest.approx(1.0 / 25)


def cosine_with_warmup_factor(step, warmup_steps, total_steps, min_ratio, start_factor):
    """The schedule written out by hand, as a LambdaLR multiplier of the base lr."""
    if step < warmup_steps:
        return start_factor + (1 - start_factor) * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("seed", range(10))
def test_cosine_with_warmup_matches_lambda_lr(seed):
    rng = np.random.default_rng(seed)
    lr = float(rng.uniform(0.01, 1))
    total_steps = int(rng.integers(1, 60))
    warmup_steps = int(rng.integers(0, total_steps + 1))
    min_lr = float(rng.uniform(0, lr)) if seed % 2 else 0.0
    start_factor = float(rng.uniform(0, 0.5)) if seed % 3 == 0 else 0.0
    ours_optimizer, torch_optimizer = make_optimizers(lr=lr)
    ours = CosineWithWarmup(
        ours_optimizer, warmup_steps, total_steps, min_lr, warmup_start_factor=start_factor
    )
    theirs = lr_scheduler.LambdaLR(
        torch_optimizer,
        lambda step: cosine_with_warmup_factor(
            step, warmup_steps, total_steps, min_lr / lr, start_factor
        ),
    )
    ours_lrs, torch_lrs = lr_sequences(ours, theirs, steps=total_steps + 5)
    np.testing.assert_allclose(ours_lrs, torch_lrs, rtol=1e-12, atol=1e-15)


def test_cosine_with_warmup_landmarks():
    optimizer, _ = make_optimizers(lr=1.0)
    schedule = CosineWithWarmup(optimizer, warmup_steps=4, total_steps=14, min_lr=0.1)
    lrs = [optimizer.lr]
    for _ in range(20):
        schedule.step()
        lrs.append(optimizer.lr)
    assert lrs[0] == 0.0  # warm-up starts from zero
    assert lrs[2] == pytest.approx(0.5)
    assert lrs[4] == pytest.approx(1.0)  # peak at the end of warm-up
    assert lrs[9] == pytest.approx(0.55)  # halfway through the cosine
    assert lrs[14:] == pytest.approx([0.1] * 7)  # then min_lr for good


@pytest.mark.parametrize(
    "build",
    [
        lambda o: StepLR(o, step_size=4, gamma=0.5),
        lambda o: CosineWithWarmup(o, warmup_steps=3, total_steps=20, min_lr=0.01),
        lambda o: OneCycleLR(o, max_lr=0.3, total_steps=20, three_phase=True),
    ],
)
def test_state_dict_round_trip_resumes_the_sequence(build):
    optimizer, _ = make_optimizers(lr=0.1)
    schedule = build(optimizer)
    for _ in range(7):
        schedule.step()
    buffer = io.BytesIO()
    np.savez(buffer, **schedule.state_dict())
    buffer.seek(0)
    saved = dict(np.load(buffer))

    fresh_optimizer, _ = make_optimizers(lr=0.1)
    resumed = build(fresh_optimizer)
    resumed.load_state_dict(saved)
    assert fresh_optimizer.lr == optimizer.lr
    assert fresh_optimizer.momentum == optimizer.momentum
    for _ in range(10):
        schedule.step()
        resumed.step()
        assert fresh_optimizer.lr == optimizer.lr
        assert fresh_optimizer.momentum == optimizer.momentum


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda o: StepLR(o, step_size=0), "StepLR: step_size must be a positive integer"),
        (lambda o: StepLR(o, step_size=2, gamma=0), "StepLR: gamma must be > 0"),
        (lambda o: CosineWithWarmup(o, 10, 5), r"total_steps must be an integer >= max\(1, wa"),
        (lambda o: CosineWithWarmup(o, -1, 5), "warmup_steps must be an integer >= 0"),
        (lambda o: CosineWithWarmup(o, 1, 5, min_lr=1.0), r"min_lr must be in \[0, base lr\]"),
        (lambda o: OneCycleLR(o, 0.1, total_steps=0), "total_steps must be a positive integer"),
        (lambda o: OneCycleLR(o, 0.1, 10, pct_start=1.5), r"pct_start must be in \[0, 1\]"),
        (lambda o: OneCycleLR(o, 0.1, 10, anneal_strategy="exp"), "'cos' or 'linear'"),
        (lambda o: OneCycleLR(o, 0.1, 10, pct_start=0.1), "phase of zero length"),
        (lambda o: StepLR(object(), 3), "expected an optimizer with an `lr` attribute"),
    ],
)
def test_bad_settings_raise_clear_errors(build, message):
    optimizer, _ = make_optimizers(lr=0.1)
    with pytest.raises(ValueError, match=message):
        build(optimizer)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal_strategy", ["cos", "linear"])
def test_onecycle_lr_function_matches_torch_without_an_optimizer(anneal_strategy, three_phase):
    settings = {"max_lr": 0.2, "total_steps": 40, "anneal_strategy": anneal_strategy}
    _, torch_optimizer = make_optimizers()
    theirs = lr_scheduler.OneCycleLR(torch_optimizer, three_phase=three_phase, **settings)
    for step in range(settings["total_steps"]):  # torch's lr after `step` steps
        ours = onecycle_lr(step, three_phase=three_phase, **settings)
        assert ours == pytest.approx(theirs.get_last_lr()[0], rel=1e-12, abs=1e-15), step
        torch_optimizer.step()
        theirs.step()
    with pytest.raises(ValueError, match="phase of zero length"):
        onecycle_lr(0, total_steps=10, max_lr=0.1, pct_start=0.1)


def test_cosine_with_warmup_lr_is_a_multiplier_by_default():
    assert cosine_with_warmup_lr(0, 4, 14) == 0.0
    assert cosine_with_warmup_lr(2, 4, 14) == 0.5
    assert cosine_with_warmup_lr(4, 4, 14) == 1.0
    assert cosine_with_warmup_lr(9, 4, 14) == pytest.approx(0.5)
    assert cosine_with_warmup_lr(99, 4, 14, base_lr=0.3, min_lr=0.01) == pytest.approx(0.01)
