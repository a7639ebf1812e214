"""Running a sweep: the Optuna study, its trials, and their MLflow runs.

Layout, for ``--out runs/sweeps/NAME``::

    runs/sweeps/optuna.db         the Optuna studies (one per sweep name), SQLite
    runs/sweeps/mlflow.db         the MLflow store (unless $MLFLOW_TRACKING_URI is set)
    runs/sweeps/NAME/trial_000/   a run directory, trained by the `dlcc train` loop
    runs/sweeps/NAME/best.yaml    the best trial's settings, as a recipe
    runs/sweeps/NAME/sweep.json   the summary; *.png the plots

The sweep directory is placed like a run directory: its parent holds ``mlflow.db``, and
``optuna.db`` beside it. Optuna and MLflow cannot share one SQLite file: both keep their
schema revision in a table named ``alembic_version`` with their own revision ids, so
whichever comes second refuses the file (Optuna 5.0: "no longer compatible with the table
schema"; MLflow 3.17: "Can't locate revision identified by 'v3.2.0.a'").
`tests/sweep/test_sweep_storage.py` holds that finding.

Trials are asked and told (``study.ask``/``study.tell``), so the trial count is exact
with parallel workers: a worker takes the sweep's lock file, counts the trials that ended
or are running, and asks for a new one only below ``--trials``. Each tell is a committed
SQLite transaction, so a crash loses only the trials that were running; ``--resume``
marks those FAIL (user attribute ``interrupted``; they do not count) and goes on.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dlcc.errors import DlccError, TrainingDiverged

STORAGE_NAME = "optuna.db"
LOCK_NAME = ".sweep.lock"
SAMPLERS = ("tpe", "random")
DIRECTIONS = ("maximize", "minimize")
# Trial states that count toward --trials (a trial interrupted by a crash does not).
ENDED = ("COMPLETE", "PRUNED", "FAIL")


class SweepError(DlccError):
    """A sweep cannot start or go on (a study name in use, a mismatched resume, ...)."""


@dataclass
class SweepSpec:
    """Everything a sweep worker needs (picklable, for the worker processes)."""

    recipe: str
    space_file: str
    out: str
    name: str
    trials: int
    settings: dict  # the resolved recipe, --set and the metric flags applied
    params: list  # [Param]
    metric: str
    direction: str  # maximize | minimize
    jobs: int = 1
    sampler: str = "tpe"
    seed: int = 0
    prune: bool = True
    startup_trials: int = 5
    warmup_epochs: int = 0
    experiment: str = "sweep"
    track: bool = True
    mlflow_uri: str | None = None
    parent_run_id: str | None = None
    command: list = field(default_factory=list)

    @property
    def sweep_dir(self) -> Path:
        return Path(self.out)


def storage_url(sweep_dir: str | Path) -> str:
    """``sqlite:///<parent of the sweep directory>/optuna.db`` (absolute)."""
    return f"sqlite:///{Path(sweep_dir).resolve().parent / STORAGE_NAME}"


def make_storage(url: str):
    """Optuna's RDB storage with a patient SQLite lock wait (parallel workers write to it)."""
    import optuna

    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})


def make_sampler(name: str, seed: int):
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: SweepSpec):
    import optuna

    if not spec.prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_epochs
    )


def trial_dir(spec: SweepSpec, number: int) -> Path:
    return spec.sweep_dir / f"trial_{number:03d}"


def counted(trial) -> bool:
    """Does this trial count toward --trials? (ended, and not cut off by a crash)"""
    return trial.state.name in ENDED and not trial.user_attrs.get("interrupted")


# ---- opening the study -------------------------------------------------------------------


def open_study(spec: SweepSpec, resume: bool):
    """Create the study (refused when the name is taken), or load it with --resume
    (refused when there is none, or when it was started with another space or metric)."""
    import optuna

    url = storage_url(spec.sweep_dir)
    storage = make_storage(url)
    exists = spec.name in optuna.study.get_all_study_names(storage)
    from dlcc.runs.rundir import settings_differences
    from dlcc.training.loop import RESUME_FREE

    identity = {
        "settings": spec.settings,
        "space": {param.key: param.describe() for param in spec.params},
        "metric": spec.metric,
        "direction": spec.direction,
    }
    if exists and not resume:
        count = len(optuna.load_study(study_name=spec.name, storage=storage).trials)
        raise SweepError(
            f"a study named {spec.name!r} already exists in {url} ({count} trials): pass "
            "--resume to continue it, or choose another name with --name (or another --out)"
        )
    if not exists:
        if resume:
            raise SweepError(
                f"--resume: there is no study named {spec.name!r} in {url}; start it "
                "without --resume"
            )
        if spec.sweep_dir.exists() and any(spec.sweep_dir.iterdir()):
            raise SweepError(
                f"{spec.sweep_dir} is not empty but {url} has no study {spec.name!r}: "
                "choose another --out, or delete the folder"
            )
        study = optuna.create_study(study_name=spec.name, storage=storage, direction=spec.direction)
        for key, value in identity.items():
            study.set_user_attr(key, value)
        return study
    study = optuna.load_study(study_name=spec.name, storage=storage)
    for key, value in identity.items():
        stored, value = study.user_attrs.get(key), json.loads(json.dumps(value))
        if key == "settings":
            changes = settings_differences(stored or {}, value, ignore=RESUME_FREE)
            if changes:
                raise SweepError(
                    f"--resume: study {spec.name!r} was started with other recipe settings "
                    f"({'; '.join(changes)}); resume it with the same recipe and --set, or "
                    "start a new sweep with another --name"
                )
        elif stored != value:
            raise SweepError(
                f"--resume: study {spec.name!r} was started with {key} {stored!r}, not "
                f"{value!r}; resume it with the same {key}, or start a new sweep with "
                "another --name"
            )
    mark_interrupted(study, spec)
    return study


def mark_interrupted(study, spec: SweepSpec) -> int:
    """Trials left RUNNING by a sweep that stopped (killed, power cut) become FAIL with
    user attribute ``interrupted``; their MLflow runs FAILED. Returns how many."""
    from optuna.trial import TrialState

    storage = study._storage
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        finish_child_run(spec, trial_dir(spec, trial.number), "INTERRUPTED")
    if stale:
        numbers = ", ".join(str(trial.number) for trial in stale)
        print(f"resume: trial(s) {numbers} were cut off by the last session: marked FAIL")
    return len(stale)


# ---- MLflow: the sweep's parent run, and the trials' states ----------------------------


def open_parent_run(spec: SweepSpec, study) -> str | None:
    """The sweep's MLflow parent run (the same one on --resume); None when tracking is off
    or the store fails (a warning: the sweep goes on)."""
    if not spec.track:
        return None
    from dlcc.tracking import store
    from dlcc.tracking.sync import one_line, warn

    try:
        client = store.client(spec.mlflow_uri)
        run_id = study.user_attrs.get("mlflow_parent_run_id")
        if run_id and study.user_attrs.get("mlflow_uri") == spec.mlflow_uri:
            with contextlib.suppress(Exception):
                if client.get_run(run_id).info.lifecycle_stage != "deleted":
                    client.update_run(run_id, status="RUNNING")
                    return run_id
        experiment = store.experiment_id(client, spec.experiment, spec.mlflow_uri)
        run = client.create_run(
            experiment,
            run_name=spec.name,
            tags={
                "dlcc.kind": "sweep",
                "dlcc.run_dir": str(spec.sweep_dir.resolve()),
                "sweep.study": spec.name,
                "sweep.storage": storage_url(spec.sweep_dir),
            },
        )
        run_id = run.info.run_id
        for key, value in {
            "recipe": spec.recipe,
            "metric": spec.metric,
            "direction": spec.direction,
            "sampler": spec.sampler,
            "seed": spec.seed,
            "pruner": "median" if spec.prune else "none",
            **{f"space.{p.key}": json.dumps(p.describe()) for p in spec.params},
        }.items():
            client.log_param(run_id, key, str(value))
        study.set_user_attr("mlflow_parent_run_id", run_id)
        study.set_user_attr("mlflow_uri", spec.mlflow_uri)
        return run_id
    except Exception as error:
        warn(
            f"experiment tracking: the MLflow store {spec.mlflow_uri} failed "
            f"({one_line(error)}); the sweep goes on without its parent run"
        )
        return None


def finish_child_run(spec: SweepSpec, run_dir: Path, state: str) -> None:
    """Tag a trial's MLflow run with its Optuna state (``sweep.trial_state``); a pruned
    run is KILLED (MLflow has no PRUNED status), an interrupted one FAILED."""
    if not spec.track:
        return
    from dlcc.tracking import store
    from dlcc.tracking.sync import one_line, read_state, warn

    try:
        tracked = read_state(run_dir)
        if not tracked or not tracked.get("run_id"):
            return
        client = store.client(tracked["uri"])
        client.set_tag(tracked["run_id"], "sweep.trial_state", state)
        status = {"PRUNED": "KILLED", "FAIL": "FAILED", "INTERRUPTED": "FAILED"}.get(state)
        if status:
            client.set_terminated(tracked["run_id"], status)
    except Exception as error:
        warn(f"experiment tracking: could not record trial state {state} ({one_line(error)})")


# ---- the trials --------------------------------------------------------------------------


def run_session(spec: SweepSpec, study) -> None:
    """Run trials until the study has `spec.trials` that count: in this process, or in
    `spec.jobs` worker processes."""
    if spec.jobs <= 1:
        work(spec, worker=0, threads=None, offset=len(study.trials))
        return
    import multiprocessing

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // spec.jobs)
    print(f"{spec.jobs} worker processes, {threads} torch thread(s) each")
    context = multiprocessing.get_context("spawn")
    offset = len(study.trials)
    workers = [
        context.Process(target=worker_main, args=(spec, index, threads, offset))
        for index in range(spec.jobs)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
    failed = [index for index, process in enumerate(workers) if process.exitcode != 0]
    if failed:
        codes = ", ".join(f"{i} (exit {workers[i].exitcode})" for i in failed)
        raise SweepError(
            f"sweep worker(s) {codes} stopped with an error (its message is above); the "
            f"trials that ended are kept: fix the cause and run again with --resume"
        )


def worker_main(spec: SweepSpec, worker: int, threads: int, offset: int) -> None:
    """A worker process's entry point: its errors are printed as the CLI prints them."""
    try:
        work(spec, worker, threads, offset)
    except DlccError as error:
        print(f"dlcc: error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def work(spec: SweepSpec, worker: int, threads: int | None, offset: int) -> None:
    """Ask for a trial while fewer than spec.trials have ended or run, train it, tell it."""
    import optuna

    if threads and not spec.settings["train"].get("threads"):
        import torch

        torch.set_num_threads(threads)
    # A resumed session must not draw the first session's values again: the sampler's seed
    # moves on with the trials already in the study (and differs between workers).
    seed = spec.seed + offset + 100_003 * worker
    study = optuna.load_study(
        study_name=spec.name,
        storage=make_storage(storage_url(spec.sweep_dir)),
        sampler=make_sampler(spec.sampler, seed),
        pruner=make_pruner(spec),
    )
    while True:
        with sweep_lock(spec.sweep_dir):
            trials = study.get_trials(deepcopy=False)
            busy = sum(counted(t) or t.state.name == "RUNNING" for t in trials)
            if busy >= spec.trials:
                return
            trial = study.ask()
        run_trial(spec, study, trial)


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path):
    """An exclusive lock on the sweep's lock file (POSIX flock)."""
    import fcntl

    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / LOCK_NAME, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_trial(spec: SweepSpec, study, trial) -> None:
    """Train one trial into its run directory through the `dlcc train` loop and tell the
    study its result: COMPLETE (the run's best monitored value), PRUNED, or FAIL (the
    loss diverged: the sweep goes on; any other error: it stops)."""
    import optuna
    from optuna.trial import TrialState

    from dlcc.sweep.pruning import PruningLogger
    from dlcc.sweep.space import with_params
    from dlcc.tracking import Trackers, tracker_for
    from dlcc.training import loop
    from dlcc.training.config import check_config, config_from_dict

    run_dir = trial_dir(spec, trial.number)
    values = {param.key: param.suggest(trial) for param in spec.params}
    trial.set_user_attr("run_dir", str(run_dir))
    shown = ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in values.items()
    )
    print(f"trial {trial.number}: {shown}", flush=True)
    loggers = []
    if spec.track:
        tags = {"sweep.study": spec.name, "sweep.trial": trial.number}
        if spec.parent_run_id:
            tags["mlflow.parentRunId"] = spec.parent_run_id
        loggers.append(
            tracker_for(run_dir, experiment=spec.experiment, uri=spec.mlflow_uri, tags=tags)
        )
    if spec.prune:
        loggers.append(PruningLogger(trial, spec.metric))
    loggers = [logger for logger in loggers if logger is not None]
    try:
        config = config_from_dict(with_params(spec.settings, values), where=f"trial {trial}")
        check_config(config)
        metrics = loop.train(
            config, run_dir, logger=Trackers(*loggers) if loggers else None, command=spec.command
        )
    except optuna.TrialPruned as pruned:
        study.tell(trial, state=TrialState.PRUNED)
        finish_child_run(spec, run_dir, "PRUNED")
        print(f"trial {trial.number}: {pruned}", flush=True)
        return
    except TrainingDiverged as error:
        trial.set_user_attr("error", str(error))
        study.tell(trial, state=TrialState.FAIL)
        finish_child_run(spec, run_dir, "FAIL")
        print(f"trial {trial.number}: FAIL, the loss diverged ({error})", flush=True)
        return
    except BaseException as error:
        trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:1000])
        study.tell(trial, state=TrialState.FAIL)
        finish_child_run(spec, run_dir, "FAIL")
        raise
    value = metrics.get("best_value")
    if value is None or not math.isfinite(value):
        trial.set_user_attr("error", "no validation value")
        study.tell(trial, state=TrialState.FAIL)
        finish_child_run(spec, run_dir, "FAIL")
        raise SweepError(
            f"trial {trial.number} ({run_dir}) has no {spec.metric} value (best_value "
            f"{value}): a sweep judges trials on a validation split; give the recipe one "
            "(data.val_size)"
        )
    study.tell(trial, float(value))
    finish_child_run(spec, run_dir, "COMPLETE")
    best = study.best_trial
    print(
        f"trial {trial.number}: {spec.metric} {value:.4f} (best {best.value:.4f}, trial "
        f"{best.number})",
        flush=True,
    )
