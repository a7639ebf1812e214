"""The GAN trainer: two networks, two optimisers, alternating steps, one run directory.

A recipe with ``task: {name: gan, options: {...}}`` trains here through `dlcc train`
(`dlcc.training.commands` hands it over). ``model`` names the generator
(`dlcc.models.gan.GENERATORS`); the options (`GanOptions`) name the discriminator, the
loss and the rest::

    task:
      name: gan
      options: {loss: nonsaturating, conditional: true, n_critic: 1, ema_decay: 0.999,
                discriminator: {name: gan_discriminator, options: {norm: batch}},
                classifier: runs/mnist_cnn}       # optional: FID etc. every epoch
    data: {dataset: mnist, batch_size: 64}
    model: {name: gan_generator, options: {latent_dim: 64}}
    optim: {name: adam, lr: 0.0002, betas: [0.5, 0.999]}
    schedule: {name: none}

Per batch: one discriminator (critic) step; every `n_critic`-th batch also one generator
step, after which an exponential moving average (EMA) of the generator's weights moves
towards them. The EMA generator is the one that samples, is measured and is saved as
``model`` in the checkpoints. Real images are taken back to [-1, 1] (the tanh range)
from the loader's standardisation. A conditional GAN makes its fakes with the batch's
real labels, so real and fake share one class mix.

The run directory is the contract of DESIGN.md section 1, written with the same pieces
as the supervised loop (RunDir, prepare_run_dir, History, BestTracker, save/load_checkpoint,
the MetricsLogger, check_finite, write_history/write_run_record/write_metrics). The history
columns are ``loss_d``, ``loss_g``, ``d_real`` and ``d_fake`` (mean D(x) and D(G(z)):
probabilities for the standard GAN, critic values for WGAN-GP), plus ``fid``,
``class_accuracy``, ``class_entropy``, ``pairwise_distance`` and
``within_class_distance`` (conditional runs) when a classifier run is given. "Best" is
the lowest FID then, else the latest epoch (``monitor: epoch``).

Resume is exact (CPU): the batch order and every random draw of an epoch (noise,
interpolation weights) come from generators seeded by (seed, epoch), and the checkpoint
holds both networks, the EMA, both optimisers, the tracker, history and RNG state.
Reports: ``samples/epoch_NNN.png`` (the same fixed noise every epoch; conditional runs:
column k is class k), ``samples.gif`` (those grids across training), ``samples.png`` (the
tested generator, fresh noise) and ``losses.png``.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from dlcc.gan import losses
from dlcc.runs import (
    BestTracker,
    History,
    RunDir,
    prepare_run_dir,
    start_run_record,
    write_history,
)
from dlcc.training.config import Config, ConfigError
from dlcc.training.report import run_summary

RESUME_FREE = ("train.progress", "data.workers", "data.data_dir", "description")
LOSS_COLUMNS = ("loss_d", "loss_g", "d_real", "d_fake")


@dataclass
class GanOptions:
    """task.options of a GAN recipe."""

    loss: str = "nonsaturating"  # nonsaturating | wgan_gp
    conditional: bool = False  # class-conditional generator and projection discriminator
    n_critic: int = 1  # discriminator steps per generator step (WGAN-GP: 5)
    penalty_weight: float = 10.0  # WGAN-GP's lambda
    # weight of the mode-seeking regulariser (losses.mode_seeking_loss) in the generator's
    # loss; 0: off. Its generator steps draw each label twice, with two noises.
    mode_seeking: float = 0.0
    ema_decay: float = 0.999  # generator EMA; warmed up as min(decay, (1 + t) / (10 + t))
    lr_d: float | None = None  # the discriminator's learning rate; None: optim.lr
    discriminator: dict = field(
        default_factory=lambda: {"name": "gan_discriminator", "options": {}}
    )
    classifier: str | None = None  # a classification run dir: FID etc. each epoch
    eval_samples: int = 1000  # generated (and real test) images each measurement uses
    grid: int = 64  # images in the fixed-noise grid


def gan_options(config: Config) -> GanOptions:
    """The recipe's task.options as `GanOptions`; ConfigError for a bad key or value."""
    from dlcc.suggest import did_you_mean

    raw = dict(config.task.options)
    valid = [item.name for item in dataclasses.fields(GanOptions)]
    for key in raw:
        if key not in valid:
            raise ConfigError(
                f"task.options for gan: unknown key {key!r}{did_you_mean(key, valid)}; "
                f"valid keys: {', '.join(valid)}"
            )
    options = GanOptions(**raw)
    if options.loss not in losses.LOSSES:
        raise ConfigError(
            f"task.options.loss: expected one of {', '.join(losses.LOSSES)}, got {options.loss!r}"
        )
    for key in ("n_critic", "eval_samples", "grid"):
        if not isinstance(getattr(options, key), int) or getattr(options, key) < 1:
            raise ConfigError(f"task.options.{key}: expected an integer >= 1, got {raw[key]!r}")
    if not isinstance(options.mode_seeking, (int, float)) or options.mode_seeking < 0:
        raise ConfigError(
            f"task.options.mode_seeking: expected a weight >= 0 (0: off), got "
            f"{options.mode_seeking!r}"
        )
    if not 0 <= options.ema_decay < 1:
        raise ConfigError(f"task.options.ema_decay: expected a number in [0, 1), got {raw}")
    discriminator = options.discriminator
    if not isinstance(discriminator, dict) or set(discriminator) - {"name", "options"}:
        raise ConfigError(
            "task.options.discriminator: expected {name: gan_discriminator, options: {...}}, "
            f"got {discriminator!r}"
        )
    if config.schedule.name != "none":
        raise ConfigError(
            f"schedule.name {config.schedule.name!r}: the GAN trainer keeps a constant "
            "learning rate; set schedule: {name: none}"
        )
    if config.optim.name not in ("adam", "adamw"):
        raise ConfigError(
            f"optim.name {config.optim.name!r}: the GAN trainer uses Adam; set optim.name: "
            "adam (with betas [0.5, 0.999])"
        )
    if config.train.fit_budget:
        raise ConfigError(
            "train.fit_budget: the GAN trainer has no learning-rate schedule to lay out "
            "again; keep train.time_budget and remove train.fit_budget"
        )
    if config.train.accumulate != 1 or config.train.precision not in ("auto", "fp32"):
        raise ConfigError(
            "train.accumulate and train.precision: the GAN trainer runs fp32 without "
            "accumulation; remove them from the recipe"
        )
    return options


# ---- data ---------------------------------------------------------------------------------


def to_gan_range(inputs: torch.Tensor, mean, std) -> torch.Tensor:
    """Standardised images (N, C, H, W) -> the generator's range [-1, 1] (pixels 0..1 -> -1..1)."""
    mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return ((inputs * std + mean) * 2 - 1).clamp(-1, 1)


# ---- the networks ---------------------------------------------------------------------------


@dataclass
class GanNets:
    generator: torch.nn.Module
    discriminator: torch.nn.Module
    ema: torch.nn.Module  # the moving average of the generator: samples and is measured
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim


def build_generator(config: Config, options: GanOptions, in_shape, num_classes: int):
    """The recipe's generator (model section), conditional when the options say so."""
    from dlcc.models.common import ModelError
    from dlcc.models.gan import build_gan_model

    model_options = {"conditional": options.conditional, **config.model.options}
    try:
        return build_gan_model(config.model.name, in_shape, num_classes, **model_options)
    except ModelError as error:
        raise ConfigError(f"model: {error}") from None


def build_nets(config: Config, options: GanOptions, in_shape, num_classes, device) -> GanNets:
    from dlcc.models.common import ModelError
    from dlcc.models.gan import build_gan_model

    generator = build_generator(config, options, in_shape, num_classes).to(device)
    spec = options.discriminator
    try:
        discriminator = build_gan_model(
            spec.get("name", "gan_discriminator"),
            in_shape,
            num_classes,
            role="discriminator",
            **{"conditional": options.conditional, **spec.get("options", {})},
        ).to(device)
    except ModelError as error:
        raise ConfigError(f"task.options.discriminator: {error}") from None
    if options.loss == "wgan_gp" and any(
        isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
        for module in discriminator.modules()
    ):
        raise ConfigError(
            "task.options.loss wgan_gp with a batch-norm critic: batch norm mixes the samples, "
            "so the per-sample gradient penalty is wrong; set task.options.discriminator."
            "options.norm to layer or none"
        )
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    betas = tuple(config.optim.betas)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.optim.lr, betas=betas)
    lr_d = options.lr_d if options.lr_d is not None else config.optim.lr
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas)
    return GanNets(generator, discriminator, ema, opt_g, opt_d)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """ema <- d * ema + (1 - d) * model, with d = min(decay, (1 + step) / (10 + step)) so
    the average forgets the random start early on; buffers (BN statistics) are copied."""
    d = min(decay, (1 + step) / (10 + step))
    for average, value in zip(ema.parameters(), model.parameters(), strict=True):
        average.lerp_(value, 1 - d)
    for average, value in zip(ema.buffers(), model.buffers(), strict=True):
        average.copy_(value)


# ---- one epoch ----------------------------------------------------------------------------


def train_gan_epoch(
    nets: GanNets,
    real: torch.Tensor,
    labels: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
    options: GanOptions,
    state,
    generator: torch.Generator,
    device,
    progress: bool = False,
) -> dict:
    """One pass over `order` (indices into real (N, C, H, W) and labels (N,)), whole batches.

    Returns the epoch's means of loss_d, loss_g (over generator steps), d_real, d_fake and
    the samples seen. state.step counts generator steps over the run.
    """
    from dlcc.training.loop import check_finite

    G, D = nets.generator, nets.discriminator
    G.train()
    D.train()
    wgan = options.loss == "wgan_gp"
    sums = dict.fromkeys(LOSS_COLUMNS, 0.0)
    d_steps = g_steps = 0
    batches = range(0, len(order) - len(order) % batch_size, batch_size)
    for index, start in enumerate(tqdm(batches, leave=False, disable=not progress, unit="batch")):
        batch = order[start : start + batch_size]
        x = real[batch].to(device)  # (B, C, H, W) in [-1, 1]
        y = labels[batch].to(device) if options.conditional else None  # (B,) or None
        z = torch.randn(len(batch), nets.latent_dim, generator=generator).to(device)  # (B, Z)

        # discriminator (critic) step
        with torch.no_grad():
            fake = G(z, y)  # (B, C, H, W)
        real_scores, fake_scores = D(x, y), D(fake, y)  # (B,), (B,)
        if wgan:
            weights = torch.rand(len(batch), generator=generator).to(device)  # (B,)
            penalty = losses.gradient_penalty(D, losses.interpolate(x, fake, weights), y)
            loss_d = losses.critic_loss_wgan_gp(
                real_scores, fake_scores, penalty, options.penalty_weight
            )
        else:
            loss_d = losses.discriminator_loss_nonsaturating(real_scores, fake_scores)
        check_finite(loss_d, state, nets.opt_d)
        nets.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        nets.opt_d.step()
        d_steps += 1
        sums["loss_d"] += loss_d.item()
        as_reported = (lambda s: s) if wgan else torch.sigmoid
        sums["d_real"] += as_reported(real_scores.detach()).mean().item()
        sums["d_fake"] += as_reported(fake_scores.detach()).mean().item()

        if (index + 1) % options.n_critic:
            continue
        # generator step, with the discriminator's weights left as they are
        z = torch.randn(len(batch), nets.latent_dim, generator=generator).to(device)
        half = len(batch) // 2
        if options.mode_seeking and y is not None:
            y = torch.cat([y[:half], y[:half], y[2 * half :]])  # pairs: i and half + i
        D.requires_grad_(False)
        fake = G(z, y)
        scores = D(fake, y)
        D.requires_grad_(True)
        if wgan:
            loss_g = losses.generator_loss_wasserstein(scores)
        else:
            loss_g = losses.generator_loss_nonsaturating(scores)
        if options.mode_seeking:
            pairs = slice(0, half), slice(half, 2 * half)
            loss_g = loss_g + options.mode_seeking * losses.mode_seeking_loss(
                fake[pairs[0]], fake[pairs[1]], z[pairs[0]], z[pairs[1]]
            )
        check_finite(loss_g, state, nets.opt_g)
        nets.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        nets.opt_g.step()
        update_ema(nets.ema, G, options.ema_decay, state.step)
        state.step += 1
        g_steps += 1
        sums["loss_g"] += loss_g.item()
    if d_steps == 0:
        raise ConfigError(
            f"data.batch_size {batch_size} is larger than the {len(order)} training images: "
            "no whole batch fits; lower data.batch_size"
        )
    result = {
        "loss_d": sums["loss_d"] / d_steps,
        "loss_g": sums["loss_g"] / g_steps if g_steps else None,
        "d_real": sums["d_real"] / d_steps,
        "d_fake": sums["d_fake"] / d_steps,
    }
    result["samples"] = d_steps * batch_size
    return result


# ---- sampling and measuring -----------------------------------------------------------------


@torch.no_grad()
def generate(ema, count: int, num_classes: int, generator: torch.Generator, labels=None):
    """(images (count, C, H, W) in [-1, 1], labels (count,) or None) from the EMA generator.

    A conditional generator gets `labels`, or classes 0..K-1 in turn when none are given.
    """
    device = next(ema.parameters()).device
    ema.eval()
    if ema.conditional and labels is None:
        labels = torch.arange(count) % num_classes
    images = []
    for start in range(0, count, 500):
        size = min(500, count - start)
        z = torch.randn(size, ema.latent_dim, generator=generator).to(device)
        part = None if labels is None else labels[start : start + size].to(device)
        images.append(ema(z, part).cpu())
    return torch.cat(images), (labels if ema.conditional else None)


def measure(ema, judge, real_features, count: int, num_classes: int, seed: int) -> dict:
    """The sample figures (`dlcc.gan.metrics.sample_figures`) of `count` EMA samples."""
    from dlcc.gan.metrics import sample_figures

    images, labels = generate(ema, count, num_classes, torch.Generator().manual_seed(seed))
    requested = None if labels is None else labels.numpy()
    return sample_figures(judge, real_features, judge.judge(images), requested)


def fid_floor(judge, real_train: torch.Tensor, real_test: torch.Tensor, count: int) -> float:
    """FID between `count` real training and real test images: what a perfect generator gets
    with this many samples, this classifier's features."""
    from dlcc.gan.metrics import feature_fid

    return feature_fid(
        judge.judge(real_train[:count]).features, judge.judge(real_test[:count]).features
    )


def real_reference_figures(
    judge, real_train: torch.Tensor, test_set, count: int, conditional: bool
) -> dict[str, float | None]:
    """What a perfect generator would score with `count` samples: ``fid_floor`` and, for a
    conditional GAN, ``within_class_distance_real`` (the real test images by their labels).
    test_set: the real test images (N, C, H, W) in [-1, 1] and their labels (N,)."""
    from dlcc.gan.metrics import within_class_distance

    real_test, test_labels = test_set
    within = None
    if conditional:
        features = judge.judge(real_test[:count]).features
        within = within_class_distance(features, test_labels[:count].numpy())
    return {
        "fid_floor": fid_floor(judge, real_train, real_test, count),
        "within_class_distance_real": within,
    }


def fixed_grid_inputs(options: GanOptions, latent_dim: int, num_classes: int, seed: int):
    """The noise (grid, Z) and labels of the per-epoch grid: the same in every epoch and
    session. Conditional: row-major, so column k of a K-column grid is class k."""
    z = torch.randn(options.grid, latent_dim, generator=torch.Generator().manual_seed(seed + 1))
    labels = torch.arange(options.grid) % num_classes if options.conditional else None
    return z, labels


# ---- checkpoints --------------------------------------------------------------------------


def gan_checkpoint(nets: GanNets, state, config: Config, data_summary: dict) -> dict:
    """Both networks, the EMA (as ``model``: what sampling loads), both optimisers, the
    tracker, history and RNG state; plain tensors and numbers (weights_only)."""
    return {
        "model_name": config.model.name,
        "model_options": dict(config.model.options),
        "task": "gan",
        "model": nets.ema.state_dict(),
        "generator": nets.generator.state_dict(),
        "discriminator": nets.discriminator.state_dict(),
        "optimizer": nets.opt_g.state_dict(),
        "optimizer_d": nets.opt_d.state_dict(),
        "scheduler": None,
        "epoch": state.epoch,
        "step": state.step,
        "tracker": state.tracker.state_dict(),
        "history": state.history.to_dict(),
        "rng": {"torch": torch.get_rng_state()},
        "config": config.to_dict(),
        "data": data_summary,
    }


def restore_gan(checkpoint: dict, path, nets: GanNets, state) -> None:
    from dlcc.training.checkpoint import CheckpointError

    try:
        nets.ema.load_state_dict(checkpoint["model"])
        nets.generator.load_state_dict(checkpoint["generator"])
        nets.discriminator.load_state_dict(checkpoint["discriminator"])
        nets.opt_g.load_state_dict(checkpoint["optimizer"])
        nets.opt_d.load_state_dict(checkpoint["optimizer_d"])
    except (KeyError, RuntimeError, ValueError) as error:
        reason = str(error).splitlines()[0][:160]
        raise CheckpointError(
            f"{path} does not fit this GAN ({reason}); resume with the settings it was "
            "trained with, or choose a new --out"
        ) from None
    state.history = History.from_dict(checkpoint["history"])
    state.tracker.load_state_dict(checkpoint["tracker"])
    state.epoch, state.step = checkpoint["epoch"], checkpoint["step"]
    state.last_checkpoint = str(path)
    torch.set_rng_state(checkpoint["rng"]["torch"])


# ---- the whole run --------------------------------------------------------------------------


def train_gan(config: Config, run_dir, *, logger=None, command=None) -> dict:
    """Train the GAN recipe `config` into `run_dir` (resuming an unfinished one).

    Returns metrics.json's figures: every dlcc.runs.METRIC_KEYS key, then test_loss (null)
    and test_<metric> for the sample metrics (null without a classifier) and fid_floor.
    """
    from dlcc.gan.metrics import SAMPLE_METRICS
    from dlcc.training.checkpoint import load_checkpoint, save_checkpoint
    from dlcc.training.data import epoch_permutation, load_data
    from dlcc.training.distributed import DistInfo
    from dlcc.training.logging import FileLogger, MultiLogger
    from dlcc.training.loop import budget_spent, numbers
    from dlcc.training.setup import pick_device, seed_everything
    from dlcc.training.state import RunState, data_summary

    options = gan_options(config)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "the GAN trainer runs in one process (its two optimisers are not wrapped for "
            "DDP); start it with `dlcc train`, not torchrun"
        )
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = pick_device(config.train.device)
    seed = config.train.seed
    seed_everything(seed, config.train.deterministic)
    data = load_data(config.data, seed)
    if len(data.in_shape) != 3:
        raise ConfigError(
            f"data.dataset {config.data.dataset!r}: a GAN needs images (C, H, W), "
            f"received samples of shape {data.in_shape}"
        )
    num_classes = len(data.classes)
    real = to_gan_range(data.train.inputs, data.mean, data.std)  # (N, C, H, W)
    labels = data.train.targets  # (N,)
    judge = load_classifier(options.classifier, data.classes, device)
    run = RunDir(run_dir, "torch")
    nets = build_nets(config, options, data.in_shape, num_classes, device)
    resume = prepare_run_dir(run, "gan", config.to_dict(), resume_free=RESUME_FREE)
    start_run_record(run, command)  # run.json now, so a crashed run has its record

    measured = SAMPLE_METRICS if judge is not None else ()
    columns = ["epoch", *LOSS_COLUMNS, *measured, "lr", "seconds", "samples_per_second"]
    monitor = config.task.monitor or ("fid" if judge is not None else "epoch")
    mode = config.task.mode or ("min" if monitor in ("fid", "loss_d", "loss_g") else "max")
    if monitor not in columns:
        raise ConfigError(
            f"task.monitor {monitor!r}: expected one of the GAN's history columns "
            f"({', '.join(columns)}); fid and the other sample metrics need "
            "task.options.classifier"
        )
    state = RunState(History(columns), BestTracker(monitor, mode, patience=config.train.patience))
    if resume:
        restore_gan(load_checkpoint(resume), resume, nets, state)
        print(f"resuming {run.root} after epoch {state.epoch} of {config.train.epochs}")
    summary = {**data_summary(data), "conditional": options.conditional}

    real_test = to_gan_range(data.test.inputs, data.mean, data.std)
    real_features = None
    if judge is not None:
        real_features = judge.judge(real_test[: options.eval_samples]).features
    grid_z, grid_labels = fixed_grid_inputs(options, nets.latent_dim, num_classes, seed)
    grid_columns = num_classes if options.conditional else None

    logged = [{"step": row["epoch"], **numbers(row)} for row in state.history.rows()]
    file_logger = FileLogger(run.root, resume_rows=logged)
    logger = MultiLogger(file_logger, logger) if logger else file_logger
    logger.log_params(config.to_dict())
    started = time.perf_counter()
    try:
        while state.epoch < config.train.epochs and not state.tracker.should_stop:
            if budget_spent(state.history, config.train.time_budget, DistInfo()):
                break
            epoch = state.epoch
            generator = torch.Generator().manual_seed(seed * 7919 + epoch * 101)
            order = epoch_permutation(len(real), seed, epoch)
            epoch_start = time.perf_counter()
            result = train_gan_epoch(
                nets, real, labels, order, config.data.batch_size, options, state,
                generator, device, config.train.progress,
            )  # fmt: skip
            seconds = time.perf_counter() - epoch_start
            figures = {}
            if judge is not None:
                figures = measure(
                    nets.ema, judge, real_features, options.eval_samples, num_classes, seed
                )
            state.epoch = epoch + 1
            state.history.append(
                epoch=epoch + 1,
                **{name: result[name] for name in LOSS_COLUMNS},
                **{name: figures[name] for name in measured},
                lr=nets.opt_g.param_groups[0]["lr"],
                seconds=seconds,
                samples_per_second=result["samples"] / seconds,
            )
            improved = state.tracker.update(epoch + 1, state.history[monitor][-1])
            state.history.best_epoch = state.tracker.best_epoch
            state.history.stopped_early = state.tracker.stopped_early
            checkpoint = gan_checkpoint(nets, state, config, summary)
            state.last_checkpoint = str(save_checkpoint(run.last, checkpoint))
            if improved:
                save_checkpoint(run.best, checkpoint)
            write_epoch_grid(nets.ema, grid_z, grid_labels, grid_columns, run.root, epoch + 1)
            write_history(run, state.history)
            logger.log_metrics(numbers(state.history.last()), step=epoch + 1)
            print(epoch_line(state.history, config.train.epochs), flush=True)
        session_seconds = time.perf_counter() - started
        return finish_gan_run(
            nets, judge, real, (real_test, data.test.targets), real_features, options,
            num_classes, config, run, state, logger, command, session_seconds,
        )  # fmt: skip
    finally:
        logger.close()


def load_classifier(path: str | None, classes: list[str], device):
    """task.options.classifier as a `dlcc.gan.metrics.Judge` (None when not given), checked
    to know the GAN dataset's classes."""
    from dlcc.gan.metrics import load_judge

    if path is None:
        return None
    if not Path(path).is_dir():
        raise ConfigError(
            f"task.options.classifier {path!r} does not exist: train the classifier first "
            "(e.g. `dlcc train mnist_cnn --out runs/mnist_cnn`), or remove "
            "task.options.classifier to train without sample metrics"
        )
    judge = load_judge(path, device=str(device))
    if list(judge.classes) != list(classes):
        raise ConfigError(
            f"task.options.classifier {path!r} knows the classes {judge.classes}, the GAN's "
            f"dataset has {list(classes)}: give a classifier trained on the same dataset"
        )
    return judge


def write_epoch_grid(ema, z, labels, columns, root: Path, epoch: int) -> None:
    """samples/epoch_NNN.png from the fixed noise, then samples.gif of all of them so far."""
    from dlcc.gan.images import save_gif, save_grid

    ema.eval()
    device = next(ema.parameters()).device
    with torch.no_grad():
        images = ema(z.to(device), None if labels is None else labels.to(device)).cpu()
    save_grid(images, root / "samples" / f"epoch_{epoch:03d}.png", columns)
    frames = sorted((root / "samples").glob("epoch_*.png"))
    save_gif(frames, root / "samples.gif")


def epoch_line(history: History, epochs: int) -> str:
    row = history.last()
    shown = [
        name
        for name in ("fid", "class_accuracy", "within_class_distance")
        if row.get(name) is not None
    ]
    measured = "".join(f"  {name} {row[name]:.4f}" for name in shown)
    loss_g = "n/a" if row["loss_g"] is None else f"{row['loss_g']:.4f}"
    return (
        f"epoch {row['epoch']:>3}/{epochs}  loss_d {row['loss_d']:.4f}  loss_g {loss_g}  "
        f"d_real {row['d_real']:.3f}  d_fake {row['d_fake']:.3f}{measured}  "
        f"{row['seconds']:.1f}s ({row['samples_per_second']:.0f}/s)"
    )


def plot_losses(history: History, path: Path) -> None:
    """losses.png: loss_d and loss_g, and d_real / d_fake, per epoch."""
    import matplotlib.pyplot as plt

    from dlcc.plots import _save

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = history["epoch"]
    for axis, names, title in ((left, ("loss_d", "loss_g"), "losses"),
                               (right, ("d_real", "d_fake"), "D(x), D(G(z))")):  # fmt: skip
        for name in names:
            points = [(e, v) for e, v in zip(epochs, history[name], strict=True) if v is not None]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=name)
        axis.set_xlabel("epoch")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    _save(figure, path)


def finish_gan_run(
    nets, judge, real, test_set, real_features, options, num_classes, config, run, state,
    logger, command, session_seconds,
) -> dict:  # fmt: skip
    """The tested EMA generator (best when a metric chose it, else last), its samples,
    the sample figures, losses.png, run.json and metrics.json (last). test_set: the real
    test images (N, C, H, W) in [-1, 1] and their labels (N,)."""
    from dlcc.gan.images import save_grid
    from dlcc.gan.metrics import SAMPLE_METRICS
    from dlcc.models import count_parameters
    from dlcc.runs import write_metrics, write_run_record
    from dlcc.training.checkpoint import load_checkpoint
    from dlcc.training.loop import numbers

    tracker, history = state.tracker, state.history
    test_checkpoint = "last"
    if tracker.monitor != "epoch" and run.best.is_file():
        nets.ema.load_state_dict(load_checkpoint(run.best)["model"])
        test_checkpoint = "best"
    images, _ = generate(
        nets.ema, 64, num_classes, torch.Generator().manual_seed(config.train.seed + 2)
    )
    save_grid(images, run.root / "samples.png", num_classes if options.conditional else None)
    figures = dict.fromkeys(SAMPLE_METRICS)
    references = dict.fromkeys(("fid_floor", "within_class_distance_real"))
    if judge is not None:
        figures = measure(
            nets.ema, judge, real_features, options.eval_samples, num_classes,
            config.train.seed + 3,
        )  # fmt: skip
        references = real_reference_figures(
            judge, real, test_set, options.eval_samples, options.conditional
        )
    if len(history):
        plot_losses(history, run.root / "losses.png")
    metrics = {
        **run_summary("gan", tracker, history, test_checkpoint, session_seconds, nets.generator),
        "test_loss": None,  # a GAN has no test loss: its test figures are of samples
        **{f"test_{name}": value for name, value in figures.items()},
        **references,  # fid_floor, within_class_distance_real: what real data scores
        "test_samples": options.eval_samples if judge is not None else 0,
        "parameters_discriminator": count_parameters(nets.discriminator),
        "model": config.model.name,
        "dataset": config.data.dataset,
        "classifier": options.classifier,
    }
    write_run_record(run, command)
    test_figures = {key: value for key, value in metrics.items() if key.startswith("test_")}
    logger.log_metrics(numbers(test_figures), len(history))
    for name in ("losses.png", "samples.png", "samples.gif"):
        if (run.root / name).is_file():
            logger.log_artifact(run.root / name)
    write_metrics(run, metrics)  # last: marks the run finished
    shown = ", ".join(
        f"{name} {value:.4f}" for name, value in test_figures.items() if isinstance(value, float)
    )
    print(f"{shown or 'no classifier given, so no sample metrics'}; run directory {run.root}")
    return metrics


__all__ = ["GanOptions", "gan_options", "train_gan", "train_gan_epoch", "update_ema"]
