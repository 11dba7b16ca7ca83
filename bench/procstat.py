"""CPU time and memory of a server's process tree, read from /proc (Linux)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its last ')'.
    return text[text.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """Direct children of `pid`."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    pids, frontier = [pid], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children(parent)]
        pids.extend(frontier)
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` (all its threads) and of its living descendants."""
    total = 0
    for member in tree(pid):
        fields = _stat_fields(member)
        if fields:
            # Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted from the state field.
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def wait_idle(
    pid: int, *, busy_below: float = 0.05, window_s: float = 0.5, timeout_s: float = 120.0
) -> float:
    """Waits until the tree of `pid` uses less than `busy_below` of one core over `window_s`;
    returns the seconds waited. A load tool that stops leaves its last requests queued in the
    server (wrk closes the connections, the server still computes the answers), and the next
    run must not start on that backlog."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = cpu_seconds(pid)
        time.sleep(window_s)
        if cpu_seconds(pid) - before < busy_below * window_s:
            break
    return time.monotonic() - started


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Memory:
    rss_mib: float
    """Resident memory now, summed over the tree."""
    peak_rss_mib: float
    """VmHWM (the peak resident memory) summed over the tree."""


def memory(pid: int) -> Memory:
    members = tree(pid)
    rss = sum(_status_kib(member, "VmRSS") for member in members)
    peak = sum(_status_kib(member, "VmHWM") for member in members)
    return Memory(rss / 1024, peak / 1024)


def process_rss_mib(pid: int) -> float:
    """Resident memory of `pid` alone (not its children)."""
    return _status_kib(pid, "VmRSS") / 1024


def fd_targets(pid: int) -> list[str]:
    """What each open descriptor of `pid` points at: a path, or 'socket', 'pipe', 'anon_inode:X'
    (the inode numbers dropped, so two samples can be compared by kind)."""
    targets = []
    try:
        for fd in (PROC / str(pid) / "fd").iterdir():
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            targets.append(target.split(":[", 1)[0] if ":[" in target else target)
    except OSError:
        pass
    return sorted(targets)


def open_fds(pid: int) -> int:
    """File descriptors `pid` holds open (sockets, files, pipes); 0 if it is gone."""
    try:
        return sum(1 for _ in (PROC / str(pid) / "fd").iterdir())
    except OSError:
        return 0
