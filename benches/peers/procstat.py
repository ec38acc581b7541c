"""Measurements shared by the Python drivers: CPU time and peak RSS of a
process from /proc, the load average, the machine's busy CPU, percentiles.
(cairn-peer and the Restate driver read the same files the same way.)"""

import os
import time

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def cpu_ms(pid):
    """utime + stime of a process, in ms (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_MS


def starttime(pid):
    """Field 22 of /proc/PID/stat: with the PID, names the process for good
    (scripts/bench-peers only signals a PID whose start time still matches)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return ""


def peak_rss_mib(pid):
    """VmHWM of a process, MiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def machine_busy_ms():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) * TICK_MS


class Window:
    """A phase: load average at both ends, and the CPU used meanwhile by
    processes that are not part of the benchmark (`other_cores`)."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.t = time.monotonic()
        self.load1_start = load1()
        self.busy = machine_busy_ms()
        self.ours = {p: cpu_ms(p) for p in self.pids}

    def ours_delta(self):
        return {p: cpu_ms(p) - c for p, c in self.ours.items()}

    def close(self, into):
        wall_ms = (time.monotonic() - self.t) * 1000.0
        ours = sum(self.ours_delta().values())
        other = (machine_busy_ms() - self.busy) - ours
        into["load1_start"] = self.load1_start
        into["load1_end"] = load1()
        into["other_cores"] = round(max(other, 0.0) / wall_ms, 2)
        into["wall_s"] = round(wall_ms / 1000.0, 3)
        return into


def percentile(sorted_ms, p):
    if not sorted_ms:
        return float("nan")
    i = round((len(sorted_ms) - 1) * p)
    return round(sorted_ms[min(i, len(sorted_ms) - 1)], 2)


def count_keys(path, keys):
    """Occurrences of each expected key in a trace file (one line per effect:
    `<key> <attempt>`)."""
    counts = {k: 0 for k in keys}
    unexpected = 0
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if not parts:
                    continue
                if parts[0] in counts:
                    counts[parts[0]] += 1
                else:
                    unexpected += 1
    except OSError:
        pass
    return counts, unexpected


def exactly_once(counts, unexpected):
    once = sum(1 for c in counts.values() if c == 1)
    dup = sum(1 for c in counts.values() if c > 1)
    missing = sum(1 for c in counts.values() if c == 0)
    return {
        "keys_expected": len(counts),
        "keys_once": once,
        "keys_dup": dup,
        "keys_missing": missing,
        "keys_unexpected": unexpected,
        "exactly_once": once == len(counts) and unexpected == 0,
    }
