"""`dlcc track compare --sweep SWEEP_DIR`: a sweep's completed trials ranked from its sweep.json.

The sweep.json is written here in the format `dlcc sweep` writes (its `direction` and its
`trials`, each with number, state, value, params and run_dir); no sweep is run.
"""

from __future__ import annotations

import json

from dlcc.cli import main


def write_sweep(folder, direction, trials):
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "name": "lr",
        "metric": "val_loss",
        "direction": direction,
        "trials": [
            {"number": n, "state": s, "value": v, "params": p, "run_dir": str(folder / f"t{n}")}
            for n, s, v, p in trials
        ],
    }
    (folder / "sweep.json").write_text(json.dumps(summary))


def test_compare_sweep_ranks_completed_trials_only(tmp_path, capsys):
    trials = [
        (0, "COMPLETE", 0.40, {"optim.lr": 0.01}),
        (1, "PRUNED", 0.10, {"optim.lr": 0.3}),
        (2, "COMPLETE", 0.25, {"optim.lr": 0.003}),
        (3, "FAIL", None, {"optim.lr": 1.0}),
    ]
    write_sweep(tmp_path / "sweep", "minimize", trials)
    assert main(["track", "compare", "--sweep", str(tmp_path / "sweep"), "--top", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sweep lr: val_loss (minimize), 4 trials")
    assert "2 complete" in lines[0] and "1 pruned" in lines[0] and "1 fail" in lines[0]
    assert lines[1].split()[:4] == ["1.", "trial", "2", "0.25"]
    assert lines[2].split()[:4] == ["2.", "trial", "0", "0.4"]
    assert len(lines) == 3, "pruned and failed trials are not ranked; no run directory exists"


def test_compare_sweep_without_sweep_json_is_one_line(tmp_path, capsys):
    assert main(["track", "compare", "--sweep", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "sweep.json does not exist" in err and len(err.strip().splitlines()) == 1
    assert main(["track", "compare", "runs/a", "--sweep", str(tmp_path)]) == 2
    assert main(["track", "compare"]) == 2
    assert "nothing to compare" in capsys.readouterr().err
