"""Processes and devices: the local launcher behind ``--num-processes``, the torchrun /
accelerate environment a command finds itself in, and ``process_map`` (independent pieces of
CPU work, such as describing many volumes, spread over the CPU's cores)."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable, Sequence

from .errors import SettingError, setting


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3      # mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse rather than return it to the kernel.

    By default an allocation above 32 MiB gets fresh pages from mmap and gives them back on free,
    so the kernel zeroes every page of every large activation again at each network call (a 64^3
    volume's batch of sections is one such tensor). With mmap and trimming raised to 1 GiB those
    blocks are recycled from the heap: the same numbers, far less system time, a little more
    resident memory. Called once by the command line; Python callers may call it themselves.
    Returns whether it applied (glibc only; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
        big = ctypes.c_int(1 << 30)
        return all(libc.mallopt(p, v) == 1 for p, v in ((_M_MMAP_THRESHOLD, big), (_M_TRIM_THRESHOLD, big),
                                                         (_M_TOP_PAD, ctypes.c_int(64 << 20))))
    except (OSError, AttributeError):                                     # not glibc (musl, ...)
        return False


def dist_info() -> tuple[int, int]:
    """(rank, world size) from the torchrun / accelerate environment."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def distributed_state():
    """accelerate's ``PartialState`` when this process is one of several, else None."""
    if dist_info()[1] <= 1:
        return None
    import torch
    from accelerate import PartialState
    return PartialState(cpu=not torch.cuda.is_available())


def default_device(requested: str | None = None) -> str:
    """``requested`` if usable; else this process's GPU under torchrun, any GPU, or the CPU."""
    import torch
    if requested is not None:
        try:
            kind = torch.device(requested).type
        except (RuntimeError, TypeError):
            kind = None
        if kind not in ("cpu", "cuda"):
            raise SettingError("device", requested, "expected cpu, cuda or cuda:N")
        if kind == "cuda" and not torch.cuda.is_available():
            raise SettingError("device", requested, "no CUDA device is available here; use cpu")
        if kind == "cuda" and torch.device(requested).index is not None and \
                torch.device(requested).index >= torch.cuda.device_count():
            raise SettingError("device", requested, f"this machine has {torch.cuda.device_count()} CUDA device(s)")
        return requested
    state = distributed_state()
    if state is not None:
        return str(state.device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def available_memory(device: str = "cpu") -> int:
    """Bytes that a new allocation can use: free memory of a CUDA device, else the system's
    MemAvailable (Linux), else its physical memory."""
    import torch
    if str(device).startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def strip_flag(argv: Sequence[str], flag: str) -> list[str]:
    """``argv`` without ``flag VALUE`` and ``flag=VALUE``."""
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            rest.append(a)
    return rest


def launch(n: int, argv: Sequence[str]) -> int:
    """Re-run ``microdiff argv`` (without --num-processes) in ``n`` local processes with the
    torch.distributed environment set as torchrun would (one process per GPU, or gloo on CPUs);
    returns the worst exit code."""
    import socket
    rest = strip_flag(argv, "--num-processes")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs = []
    for rank in range(n):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(n),
               "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(n)}
        env.setdefault("OMP_NUM_THREADS", str(max(1, cpu_cores() // n)))
        procs.append(subprocess.Popen([sys.executable, "-m", "microdiff", *rest], env=env))
    codes = [p.wait() for p in procs]
    return max(codes, key=abs)


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS says, else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                              # not on Linux
        return os.cpu_count() or 1


def resolve_workers(workers: int, items: int) -> int:
    """Processes for ``items`` pieces of work: ``workers`` (0: one per core), at most one per item."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise SettingError("workers", workers, "expected 0 (one process per CPU core) or a count >= 1")
    return max(1, min(workers or cpu_cores(), items))


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)


def process_map(fn: Callable, items: Sequence, workers: int = 0) -> list:
    """``[fn(x) for x in items]``, in order, computed in ``resolve_workers(workers)`` fresh
    processes (spawned, not forked: the parent's torch thread pool is never copied), each with one
    torch thread. ``fn`` and the items must be picklable (a module-level function, or a
    ``functools.partial`` of one). With one worker it runs here, in this process. The first error
    any item raises is raised here, and the items not yet started are cancelled. A worker that
    dies without an answer (killed for memory, say) is a ``SettingError`` of ``workers``: fewer
    processes need less memory."""
    n = resolve_workers(workers, len(items))
    if n == 1:
        return [fn(x) for x in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread)
    try:
        return list(pool.map(fn, items))
    except BrokenProcessPool:
        raise SettingError("workers", workers, f"one of {n} worker processes stopped without an answer (killed "
                           f"for memory?): run again with fewer, e.g. {setting('workers')} 1") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
