"""torchrun across hosts, not just processes: two network namespaces joined by a veth pair
stand in for two machines, one torchrun agent in each (c10d rendezvous, gloo over the veth).

1. The two hosts train to the weights one process gets on the same global batch.
2. A node whose worker is killed with SIGKILL mid-run is restarted by torchrun
   (--max-restarts), the job resumes from the run directory's last checkpoint, and it ends
   exactly where the uninterrupted two-host run ends.

The run directory is one path on a file system both hosts share (as NFS would be): only
rank 0 writes it, but every rank reads checkpoints/last.pt from it when resuming.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from training_helpers import SPLITTABLE, merged, write_recipe
from two_hosts import Host, TwoHosts, unavailable_reason

from dlcc.training.checkpoint import load_checkpoint

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing"),
]

RENDEZVOUS_PORT = 29400  # free by construction: each namespace has its own ports
RUN_TIMEOUT = 150  # seconds for one two-host run, restarts included
# Columns of history.json that do not depend on wall-clock time.
DETERMINISTIC_COLUMNS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")


@pytest.fixture
def hosts():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    pair = TwoHosts.create()
    try:
        yield pair
    finally:
        pair.remove()


def _torchrun() -> str:
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun is installed with torch"
    return torchrun


def _local_out(pair: TwoHosts, host: Host, out: Path) -> Path:
    """Each machine's own --out: no shared filesystem (only rank 0, on host a, writes)."""
    return out if host is pair.a else out.parent / f"{out.name}-on-host-b"


def _start_node(pair: TwoHosts, host: Host, recipe: Path, out: Path, job: str, restarts: int):
    """What one runs on each machine; the first host also serves the rendezvous store."""
    is_store_host = int(host is pair.a)
    log = out.parent / f"{out.name}-{host.namespace[-1]}.log"
    out = _local_out(pair, host, out)
    command = [
        _torchrun(),
        "--nnodes", "2",
        "--nproc_per_node", "1",
        "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"{pair.a.address}:{RENDEZVOUS_PORT}",
        "--rdzv-id", job,
        # The endpoint is not this machine's hostname address, so torchrun cannot tell by
        # itself which agent hosts the store; and workers are told to reach rank 0 at its
        # --local-addr rather than at the (shared, unroutable here) hostname.
        "--rdzv-conf", f"is_host={is_store_host},join_timeout=120",
        "--local-addr", host.address,
        "--max-restarts", str(restarts),
        "-m", "dlcc", "train", str(recipe), "--out", str(out), "--no-progress",
    ]  # fmt: skip
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME=host.interface,
        TP_SOCKET_IFNAME=host.interface,
        # A fresh store for each restart's workers. The shared agent store keeps the last
        # attempt's keys: when one node restarts for a failure and the other for the
        # membership change, a new worker can read its peer's old gloo address from it
        # and fail with "connectFullMesh failed ... Connection refused".
        TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1",
    )
    return pair.start(host, command, env, log), log


def _wait(processes_and_logs, deadline: float) -> str:
    """Both agents' exit, their logs joined; fails with the logs' tails if either failed."""
    for process, _ in processes_and_logs:
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    logs = {log.name: log.read_text(errors="replace") for _, log in processes_and_logs}
    codes = [process.poll() for process, _ in processes_and_logs]
    assert codes == [0, 0], f"torchrun exit codes {codes} (None: still running)\n" + "\n".join(
        f"--- {name}\n{text[-3000:]}" for name, text in logs.items()
    )
    return "\n".join(logs.values())


def _run_two_hosts(pair, recipe, out, job, restarts=0) -> str:
    started = [_start_node(pair, host, recipe, out, job, restarts) for host in (pair.a, pair.b)]
    output = _wait(started, time.monotonic() + RUN_TIMEOUT)
    assert not _local_out(pair, pair.b, out).exists(), "a rank other than 0 wrote files"
    return output


def _weights(run_dir: Path, name: str = "last.pt") -> dict:
    return load_checkpoint(run_dir / "checkpoints" / name)["model"]


def _history(run_dir: Path) -> dict:
    """history.json's columns, and its best_epoch."""
    saved = json.loads((run_dir / "history.json").read_text())
    return {**saved["columns"], "best_epoch": saved["best_epoch"]}


def _workers(agent: subprocess.Popen) -> list[psutil.Process]:
    """The training processes under one torchrun agent (not the agent itself)."""
    found = []
    for process in psutil.Process(agent.pid).children(recursive=True):
        try:
            command = " ".join(process.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "dlcc" in command and "torchrun" not in command:
            found.append(process)
    return found


def test_two_hosts_equal_one_process_on_the_same_global_batch(hosts, tmp_path):
    recipe = write_recipe(tmp_path, merged(SPLITTABLE, train={"epochs": 2}))
    single_dir, two_dir = tmp_path / "single", tmp_path / "two-hosts"
    single_command = [sys.executable, "-m", "dlcc", "train", str(recipe), "--no-progress"]
    subprocess.run(
        [*single_command, "--out", str(single_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=300,
    )
    sent_before = {host: hosts.bytes_sent(host) for host in (hosts.a, hosts.b)}
    _run_two_hosts(hosts, recipe, two_dir, job=f"equal-{os.getpid()}")

    single, two = _weights(single_dir), _weights(two_dir)
    assert single.keys() == two.keys()
    for key in single:
        torch.testing.assert_close(single[key], two[key], rtol=1e-5, atol=1e-6)
    single_history, two_history = _history(single_dir), _history(two_dir)
    assert two_history["val_accuracy"] == pytest.approx(single_history["val_accuracy"])
    assert two_history["train_loss"] == pytest.approx(single_history["train_loss"], rel=1e-5)

    # The gradients crossed the veth: each step's all-reduce moves about the model's size
    # each way (ring all-reduce over two ranks); ask for half of that, every step.
    steps = 2 * (1437 - 157) // 64
    model_bytes = sum(tensor.numel() * tensor.element_size() for tensor in single.values())
    for host in (hosts.a, hosts.b):
        sent = hosts.bytes_sent(host) - sent_before[host]
        assert sent > steps * model_bytes // 2, f"{host.interface} sent only {sent} bytes"
        # ... and nothing else is reachable: no default route out of either namespace.
        assert all(not route.startswith("default") for route in hosts.routes(host))


def test_a_killed_node_is_restarted_and_the_job_resumes_to_the_same_weights(hosts, tmp_path):
    epochs = 5
    recipe = write_recipe(tmp_path, merged(SPLITTABLE, train={"epochs": epochs}))
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    _run_two_hosts(hosts, recipe, whole_dir, job=f"whole-{os.getpid()}")

    # The same job again; once the first epoch's checkpoint exists, SIGKILL host b's worker.
    # Torchrun on b sees it die and restarts its worker; a's worker loses its peer, fails,
    # and is restarted too; the new rendezvous round resumes from checkpoints/last.pt.
    job = f"killed-{os.getpid()}"
    started = [
        _start_node(hosts, host, recipe, killed_dir, job, restarts=2) for host in (hosts.a, hosts.b)
    ]
    agent_b = started[1][0]
    deadline = time.monotonic() + RUN_TIMEOUT
    last = killed_dir / "checkpoints" / "last.pt"
    while not last.exists():
        assert all(process.poll() is None for process, _ in started), "a node ended early"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    victims = _workers(agent_b)
    assert victims, "no worker process under host b's torchrun"
    for victim in victims:
        victim.kill()  # SIGKILL: no cleanup handler runs
    output = _wait(started, deadline)
    # Host b resumed from the checkpoint rank 0 read and sent: it has no files of its own.
    assert not _local_out(hosts, hosts.b, killed_dir).exists()

    resumed = re.findall(rf"resuming {re.escape(str(killed_dir))} after epoch (\d+)", output)
    assert resumed, "the restarted job did not resume from the checkpoint\n" + output[-3000:]
    assert 1 <= int(resumed[-1]) < epochs, f"killed too late: resumed after epoch {resumed}"

    for name in ("last.pt", "best.pt"):
        whole, after_kill = _weights(whole_dir, name), _weights(killed_dir, name)
        assert whole.keys() == after_kill.keys()
        for key in whole:
            assert torch.equal(whole[key], after_kill[key]), f"{name}:{key} differs"
    whole_history, killed_history = _history(whole_dir), _history(killed_dir)
    assert killed_history["epoch"] == list(range(1, epochs + 1))
    for column in (*DETERMINISTIC_COLUMNS, "best_epoch"):
        assert killed_history[column] == whole_history[column], column
    whole_metrics = json.loads((whole_dir / "metrics.json").read_text())
    killed_metrics = json.loads((killed_dir / "metrics.json").read_text())
    for key, value in whole_metrics.items():
        if not key.startswith("train_seconds"):  # times differ; everything else is equal
            assert killed_metrics[key] == value, key
