"""``dlcc pipeline init RECIPE... [--dir DIR]``: a DVC pipeline (dvc.yaml) for recipes.

For each recipe NAME, two stages, the pattern of the project's own pipelines:

    train_NAME:
      cmd: python -m dlcc train RECIPE --params params.yaml:recipes.NAME --out runs/NAME
        --no-track --no-progress
      deps: [RECIPE]
      params: [recipes.NAME]
      outs: [runs/NAME]
    eval_NAME:
      cmd: python -m dlcc eval runs/NAME --json results/NAME.json
      deps: [runs/NAME]
      metrics: [{results/NAME.json: {cache: false}}]

Why this shape: DVC reruns a stage when a dependency, a parameter it lists or its command
changes, so the training lists its recipe file and exactly its own settings in
params.yaml (``dlcc train --params`` applies them over the recipe). Its output is the whole
run directory (DVC removes it before a rerun, so ``dlcc train`` always meets an empty
folder). Tracking is off in stages: the MLflow database beside the runs would be written by
every stage and owned by none (``dlcc track sync`` uploads a run afterwards). The
evaluation writes its figures outside the run directory (a stage must not change another
stage's output), and they are the pipeline's metrics: ``dvc metrics diff`` compares them
between commits or experiments.

params.yaml gets ``recipes: {NAME: {}}`` (the recipe as it is) for each recipe it does not
hold yet; settings already there are kept.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from dlcc.atomic import write_text_atomic
from dlcc.errors import DlccError

PARAMS_FILE = "params.yaml"
RUNS = "runs"
RESULTS = "results"


def training_stage(name: str, recipe: str, python: str = "python") -> dict:
    """The dvc.yaml stage that trains recipe file `recipe` (a path as written in dvc.yaml,
    relative to it) as run ``runs/<name>``: {"cmd", "deps", "params", "outs"}.

    "cmd" is one string, the words of the module docstring's command separated by single
    spaces (`python` first: the Python that runs dlcc, quoted with `shlex.quote` if it
    needs quoting, as is the recipe's path); "deps" [recipe]; "params" ["recipes.<name>"];
    "outs" ["runs/<name>"].
    """
    # BEGIN SOLUTION training_stage: cmd, deps, params and outs of the stage that trains one recipe
    run_dir = f"{RUNS}/{name}"
    command = [
        python, "-m", "dlcc", "train", recipe,
        "--params", f"{PARAMS_FILE}:recipes.{name}",
        "--out", run_dir, "--no-track", "--no-progress",
    ]  # fmt: skip
    return {
        "cmd": shlex.join(command),
        "deps": [recipe],
        "params": [f"recipes.{name}"],
        "outs": [run_dir],
    }
    # END SOLUTION
    # BEGIN PROMPT
    # The command's words: python, -m, dlcc, train, the recipe, --params
    # params.yaml:recipes.<name>, --out runs/<name>, --no-track, --no-progress. Join them
    # into one string with shlex.join (it quotes a word only where a shell would need it).
    # Use the module's constants PARAMS_FILE and RUNS. Return the dict of four keys, each
    # list holding one string.
    # END PROMPT


def evaluation_stage(name: str, python: str = "python") -> dict:
    """The stage that evaluates run ``runs/<name>`` into ``results/<name>.json``, the
    pipeline's metrics file: {"cmd", "deps", "metrics"}.

    "cmd": ``<python> -m dlcc eval runs/<name> --json results/<name>.json`` (shlex.join);
    "deps": ["runs/<name>"]; "metrics": [{"results/<name>.json": {"cache": False}}] (a small
    file kept in git, not in DVC's cache, so ``dvc metrics diff`` can read it at any commit).
    """
    # BEGIN SOLUTION evaluation_stage: cmd, deps and metrics of the stage that evaluates one run
    run_dir, figures = f"{RUNS}/{name}", f"{RESULTS}/{name}.json"
    return {
        "cmd": shlex.join([python, "-m", "dlcc", "eval", run_dir, "--json", figures]),
        "deps": [run_dir],
        "metrics": [{figures: {"cache": False}}],
    }
    # END SOLUTION
    # BEGIN PROMPT
    # As training_stage: the command's words joined with shlex.join, the run directory as
    # the one dependency, and the figures file as the one metrics entry, a one-key dict
    # {path: {"cache": False}}. Use the constants RUNS and RESULTS.
    # END PROMPT


def pipeline_document(recipes: dict[str, str], python: str = "python") -> dict:
    """dvc.yaml as a dict: {"stages": {train_NAME, eval_NAME for each NAME of `recipes`}},
    `recipes` mapping each run's name to its recipe file (as written in dvc.yaml)."""
    stages = {}
    for name, recipe in recipes.items():
        stages[f"train_{name}"] = training_stage(name, recipe, python)
        stages[f"eval_{name}"] = evaluation_stage(name, python)
    return {"stages": stages}


def params_document(existing: dict | None, names: list[str]) -> dict:
    """params.yaml with ``recipes.NAME: {}`` added for each name it lacks; the rest kept."""
    document = dict(existing or {})
    recipes = dict(document.get("recipes") or {})
    for name in names:
        recipes.setdefault(name, {})
    document["recipes"] = recipes
    return document


def resolve_recipes(refs: list[str], folder: Path) -> dict[str, str]:
    """{run name: recipe path relative to `folder`} for recipe names or YAML files."""
    from dlcc.training.config import find_recipe

    recipes = {}
    for ref in refs:
        path = Path(find_recipe(ref)).resolve()
        name = path.stem
        if name in recipes:
            raise DlccError(f"two recipes are named {name!r}: pass each recipe once")
        recipes[name] = Path(os.path.relpath(path, folder.resolve())).as_posix()
    return recipes


def write_pipeline(
    refs: list[str], folder: str | Path = ".", *, python: str = "python", force: bool = False
) -> tuple[Path, Path]:
    """Write FOLDER/dvc.yaml and FOLDER/params.yaml for the recipes; (dvc.yaml, params.yaml).

    An existing dvc.yaml is kept unless `force`; both files are built before either is
    written, and each is written atomically.
    """
    import yaml

    folder = Path(folder)
    if not folder.is_dir():
        raise DlccError(f"--dir {folder} is not a folder: create it (or pass an existing one)")
    dvc_yaml, params_yaml = folder / "dvc.yaml", folder / PARAMS_FILE
    if dvc_yaml.exists() and not force:
        raise DlccError(
            f"{dvc_yaml} exists: nothing is overwritten; pass --force to replace it, or "
            "--dir another folder"
        )
    recipes = resolve_recipes(refs, folder)
    existing = None
    if params_yaml.is_file():
        try:
            existing = yaml.safe_load(params_yaml.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise DlccError(
                f"{params_yaml} is not valid YAML ({error}): fix or remove it"
            ) from None
        if existing is not None and not isinstance(existing, dict):
            raise DlccError(f"{params_yaml} holds a {type(existing).__name__}, expected a mapping")
    document = pipeline_document(recipes, python)
    params = params_document(existing, list(recipes))
    header = "# Written by `dlcc pipeline init`; run it with `dvc repro`.\n"
    pipeline_text = header + yaml.safe_dump(document, sort_keys=False, width=1000)
    params_text = yaml.safe_dump(params, sort_keys=False)
    write_text_atomic(dvc_yaml, pipeline_text)
    write_text_atomic(params_yaml, params_text)
    return dvc_yaml, params_yaml
