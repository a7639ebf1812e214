"""The first program inside the grading sandbox: read-only filesystem, then run the tests.

Standard library only, and run as a script (``python sandbox_init.py --rw DIR ... -- CMD``):
the grader copies this file into its work folder and starts it under
``unshare --user --map-root-user --net --mount --pid --fork --kill-child --mount-proc``, so it
begins as root of fresh user, network, mount and PID namespaces. It then

1. bind-mounts each ``--rw`` folder onto itself (those stay writable);
2. remounts every other mount read-only (keeping each mount's nosuid/nodev/noexec flags),
   ``/proc`` of the new PID namespace included, and puts a private 512 MB tmpfs on ``/dev/shm``;
3. enters one more user and mount namespace, which locks those mounts: code running later,
   though still "root" there, can no longer remount them writable;
4. runs CMD as a child and waits for it, reaping orphans (it is PID 1 of the namespace). When
   it exits, the kernel kills whatever CMD left behind. A CMD killed by signal N gives exit
   status 128 + N.

Any failure in steps 1-3 exits with status 97 and a message on stderr, before CMD runs: the
sandbox never runs tests half-set-up. ``--probe`` does steps 1-3 and then checks that a
write outside the ``--rw`` folders fails and one inside succeeds (exit 0 if so).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

SETUP_FAILED = 97
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
# The per-mount flags the kernel refuses to drop in a user namespace: carry them over.
KEPT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]


def _encode(text: str | None) -> bytes | None:
    return text.encode() if text is not None else None


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data=None) -> None:
    arguments = (_encode(source), _encode(target), _encode(fstype), flags, _encode(data))
    if _libc.mount(*arguments) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def _unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare: {os.strerror(errno)}")


def _mount_points() -> list[tuple[str, set[str]]]:
    """(mount point, per-mount options) of each visible mount, from /proc/self/mountinfo."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")  # "\040" is a space
            points.append((point, set(fields[5].split(","))))
    return points


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def make_readonly(writable: list[str]) -> None:
    """Steps 1-3 of the module docstring."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for folder in writable:
        _mount(folder, folder, None, MS_BIND)
    if os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=512m,mode=1777")
    seen = set()
    for point, options in _mount_points():
        if point in seen or any(_inside(point, folder) for folder in writable):
            continue
        if point == "/dev/shm":
            continue
        seen.add(point)
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for name in options & KEPT_FLAGS.keys():
            flags |= KEPT_FLAGS[name]
        _mount(None, point, None, flags)
    _unshare(CLONE_NEWUSER | CLONE_NEWNS)


def run_as_init(command: list[str]) -> int:
    """Run `command` as a child and reap every process until it exits; its exit status."""
    child = os.fork()
    if child == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 127
        except InterruptedError:
            continue
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def probe(writable: list[str]) -> int:
    """0 when a write outside the writable folders fails and one inside succeeds."""
    inside = os.path.join(writable[0], "probe-inside")
    with open(inside, "w") as handle:
        handle.write("ok")
    for outside in [os.path.join(os.path.dirname(writable[0].rstrip("/")), "probe-outside")]:
        try:
            with open(outside, "w"):
                pass
        except OSError:
            continue
        os.unlink(outside)
        print(f"sandbox probe: could write {outside}", file=sys.stderr)
        return 1
    try:
        _mount(None, "/", None, MS_REMOUNT | MS_BIND)
    except OSError:
        return 0
    print("sandbox probe: could remount / writable", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    writable, is_probe = [], False
    while argv and argv[0] != "--":
        option = argv.pop(0)
        if option == "--rw" and argv:
            writable.append(os.path.realpath(argv.pop(0)))
        elif option == "--probe":
            is_probe = True
        else:
            print(f"sandbox_init: unknown option {option!r}", file=sys.stderr)
            return SETUP_FAILED
    command = argv[1:]
    if not writable or not (command or is_probe):
        print("usage: sandbox_init.py --rw DIR [--rw DIR ...] (--probe | -- CMD ...)")
        return SETUP_FAILED
    try:
        make_readonly(writable)
    except Exception as error:  # any failure: refuse to run tests half-set-up
        print(f"sandbox_init: cannot set up the read-only sandbox: {error}", file=sys.stderr)
        return SETUP_FAILED
    if is_probe:
        return probe(writable)
    if os.getpid() == 1:
        return run_as_init(command)
    os.execvp(command[0], command)
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
