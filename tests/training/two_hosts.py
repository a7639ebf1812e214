"""Two "hosts" on one machine: two network namespaces joined by a veth pair.

Each namespace has its own network stack, so a process inside it sees only `lo` and its
end of the veth, with one address in a private test subnet. Nothing is routed out of
the pair: traffic between the two hosts crosses the veth, and nothing else is reachable.
The file system is shared, as it would be over NFS on a real cluster.

`TwoHosts.create()` needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's `ip`;
`unavailable_reason()` says why not, for a skip. Names carry the pid and a random token,
so parallel test runs (pytest -n 2) and left-overs of a killed run never collide.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SUBNET_PREFIX = "10.213.0"  # a /24 that exists only inside the two namespaces


@dataclass(frozen=True)
class Host:
    namespace: str  # `ip netns` name
    interface: str  # this host's end of the veth pair (at most 15 characters)
    address: str  # its address in the test subnet


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


def unavailable_reason() -> str | None:
    """Why two namespaces cannot be made here, or None when they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (apt-get install iproute2)"
    probe = f"dlcc-probe-{os.getpid()}-{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip() or made.returncode}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class TwoHosts:
    a: Host
    b: Host
    processes: list[subprocess.Popen] = field(default_factory=list)

    @classmethod
    def create(cls) -> TwoHosts:
        token = f"{os.getpid()}{secrets.token_hex(2)}"  # at most 7 + 4 characters
        hosts = cls(
            a=Host(f"dlcc-{token}-a", f"v{token}a", f"{SUBNET_PREFIX}.1"),
            b=Host(f"dlcc-{token}-b", f"v{token}b", f"{SUBNET_PREFIX}.2"),
        )
        try:
            for host in (hosts.a, hosts.b):
                _ip("netns", "add", host.namespace)
            _ip("link", "add", hosts.a.interface, "type", "veth", "peer", "name", hosts.b.interface)
            for host in (hosts.a, hosts.b):
                _ip("link", "set", host.interface, "netns", host.namespace)
                address = f"{host.address}/24"
                _ip("-n", host.namespace, "addr", "add", address, "dev", host.interface)
                _ip("-n", host.namespace, "link", "set", "lo", "up")
                _ip("-n", host.namespace, "link", "set", host.interface, "up")
        except BaseException:
            hosts.remove()
            raise
        return hosts

    def start(self, host: Host, command: list[str], env: dict, log: Path) -> subprocess.Popen:
        """Run `command` inside `host`'s namespace, in its own process group, output to `log`."""
        with open(log, "wb") as output:
            process = subprocess.Popen(
                ["ip", "netns", "exec", host.namespace, *command],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def pids(self, host: Host) -> list[int]:
        """Every process whose network namespace is `host`'s."""
        listed = _ip("netns", "pids", host.namespace, check=False)
        return [int(pid) for pid in listed.stdout.split()]

    def bytes_sent(self, host: Host) -> int:
        shown = _ip("-j", "-s", "-n", host.namespace, "link", "show", "dev", host.interface)
        return json.loads(shown.stdout)[0]["stats64"]["tx"]["bytes"]

    def routes(self, host: Host) -> list[str]:
        return _ip("-n", host.namespace, "route", "show").stdout.strip().splitlines()

    def remove(self) -> None:
        """Kill what ran in the namespaces, then delete them (the veth pair goes with them).

        Safe to call twice and after a partial `create`. Torchrun starts its workers in
        their own sessions, so killing the process groups we started is not enough: every
        process left in our (uniquely named) namespaces is killed too.
        """
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for host in (self.a, self.b):
            left = []
            for pid in self.pids(host):
                try:
                    left.append(psutil.Process(pid))
                    left[-1].kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(left, timeout=10)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for host in (self.a, self.b):
            _ip("netns", "del", host.namespace, check=False)
        # A veth made but not yet moved into its namespace lives in ours.
        _ip("link", "del", self.a.interface, check=False)
