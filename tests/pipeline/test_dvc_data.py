"""Data versioning with DVC: a generated dataset folder through `dvc add`, a local-folder
remote, `dvc push`, the data and the cache deleted, `dvc pull`: the same bytes come back."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
from dvc_helpers import dvc_env, init_repo, need_dvc, run


def _checksums(folder):
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_dvc_add_push_pull_round_trip(tmp_path):
    dvc = need_dvc()
    root = tmp_path / "project"
    root.mkdir()
    env = dvc_env(tmp_path, root)
    init_repo(root, env)
    data = root / "data/toy"
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (data / split).mkdir(parents=True)
        for index in range(3):
            np.save(data / split / f"{index}.npy", rng.random((8, 8), dtype=np.float32))
    expected = _checksums(data)
    assert len(expected) == 6

    run([dvc, "add", "data/toy"], root, env)
    assert (root / "data/toy.dvc").is_file()
    assert "/toy" in (root / "data/.gitignore").read_text()
    run([dvc, "remote", "add", "-d", "local", str(tmp_path / "remote")], root, env)
    run([dvc, "push"], root, env)
    assert any((tmp_path / "remote").rglob("*")), "dvc push left the remote empty"

    shutil.rmtree(data)
    shutil.rmtree(root / ".dvc/cache")
    run([dvc, "pull"], root, env)
    assert _checksums(data) == expected
    assert "up to date" in run([dvc, "status"], root, env)
