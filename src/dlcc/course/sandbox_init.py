"""The first program inside the grading sandbox: hide, mount, lock, then run the tests.

Standard library only, and run as a script (``python sandbox_init.py OPTIONS -- CMD``):
the grader copies this file into its work folder and starts it under
``unshare --user --map-root-user --net --mount --pid --fork --kill-child --mount-proc``, so it
begins as root of fresh user, network, mount and PID namespaces. It then

1. mounts an empty tmpfs over each ``--hide`` folder (the course root, the grader's own
   ``dlcc`` source, the temporary folder that holds other gradings), then binds each ``--keep``
   folder that this hid (the Python installation, the work folder) back in place;
2. with ``--tmpfs MB STAGE``: mounts one tmpfs of MB megabytes on STAGE and binds a folder of
   it onto each ``--rw`` folder, so all of them share that one size limit (a disk-filling
   write fails with ENOSPC); without it, bind-mounts each ``--rw`` folder onto itself;
3. remounts every other mount read-only (keeping each mount's nosuid/nodev/noexec flags),
   ``/proc`` of the new PID namespace included, and puts a private 512 MB tmpfs on ``/dev/shm``;
4. enters one more user and mount namespace, which locks those mounts: code running later,
   though still "root" there, can no longer remount them writable;
5. sets ``RLIMIT_NPROC`` to ``--nproc N`` (it counts in this user namespace; the kernel does not
   apply it to a grader running as the real root, which gets a pids cgroup instead), changes to
   ``--cwd DIR`` (after the mounts: a working directory taken before them would still point at
   the read-only folder underneath), and runs CMD as a child, reaping orphans (it is PID 1 of
   the namespace). When it exits, the kernel kills whatever CMD left behind. A CMD killed by
   signal N gives exit status 128 + N.

Any failure in steps 1-5 exits with status 97 and a message on stderr, before CMD runs: the
sandbox never runs tests half-set-up. ``--probe`` does steps 1-4 and then checks that a
write outside the ``--rw`` folders fails and one inside succeeds (exit 0 if so).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import sys

SETUP_FAILED = 97
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MNT_DETACH = 2
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
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


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


def hide(hidden: list[str], kept: list[str]) -> None:
    """Step 1: an empty read-only tmpfs over each hidden folder; kept folders bound back."""
    entries = sorted([(p, "hide") for p in hidden] + [(p, "keep") for p in kept], key=_depth)
    handles = {}
    for path, kind in entries:  # hold each kept folder before anything hides it
        if kind == "keep" and os.path.isdir(path):
            handles[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
    covered: list[str] = []
    for path, kind in entries:  # outermost first
        if kind == "hide" and os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
            covered.append(path)
        elif kind == "keep" and path in handles and any(_inside(path, c) for c in covered):
            os.makedirs(path, exist_ok=True)
            _mount(f"/proc/self/fd/{handles[path]}", path, None, MS_BIND | MS_REC)
    for handle in handles.values():
        os.close(handle)


def _depth(entry: tuple[str, str]) -> tuple[int, str]:
    return (entry[0].rstrip("/").count("/"), entry[1])


def make_readonly(
    writable: list[str], hidden=(), kept=(), tmpfs_mb: int = 0, stage: str = ""
) -> None:
    """Steps 1-4 of the module docstring."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    hide(list(hidden), list(kept))
    if tmpfs_mb:
        _mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_mb}m,mode=0700")
        for folder in writable:
            inner = os.path.join(stage, os.path.basename(folder.rstrip("/")))
            os.makedirs(inner, exist_ok=True)
            _mount(inner, folder, None, MS_BIND)
        if _libc.umount2(stage.encode(), MNT_DETACH) != 0:
            raise OSError(ctypes.get_errno(), f"umount {stage}")
    else:
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
    writable, hidden, kept, is_probe = [], [], [], False
    tmpfs_mb, stage, nproc, cwd = 0, "", 0, ""
    lists = {"--rw": writable, "--hide": hidden, "--keep": kept}
    try:
        while argv and argv[0] != "--":
            option = argv.pop(0)
            if option in lists and argv:
                lists[option].append(os.path.realpath(argv.pop(0)))
            elif option == "--tmpfs" and len(argv) >= 2:
                tmpfs_mb, stage = int(argv.pop(0)), os.path.realpath(argv.pop(0))
            elif option == "--nproc" and argv:
                nproc = int(argv.pop(0))
            elif option == "--cwd" and argv:
                cwd = os.path.realpath(argv.pop(0))
            elif option == "--probe":
                is_probe = True
            else:
                raise ValueError(f"unknown option {option!r}")
    except ValueError as error:
        print(f"sandbox_init: {error}", file=sys.stderr)
        return SETUP_FAILED
    command = argv[1:]
    if not writable or not (command or is_probe):
        print("usage: sandbox_init.py --rw DIR [--rw DIR ...] [options] (--probe | -- CMD ...)")
        return SETUP_FAILED
    try:
        make_readonly(writable, hidden, kept, tmpfs_mb, stage)
        if nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if cwd:
            os.chdir(cwd)
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
