"""What every suite shares: timing helpers, the report, the table and the JSON file."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    """One named figure with an optional goal (``<=`` or ``>=`` a bound)."""

    name: str
    value: float
    unit: str = ""
    goal: str = ""

    def meets_goal(self) -> bool | None:
        """Whether the figure meets its goal, or None when it only reports."""
        if not self.goal:
            return None
        op, bound = self.goal.split()
        return self.value <= float(bound) if op == "<=" else self.value >= float(bound)


@dataclass
class Report:
    """What a suite returns: headline figures plus the raw measurements behind them."""

    suite: str
    figures: list[Figure] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str = "", goal: str = "") -> None:
        self.figures.append(Figure(name, value, unit, goal))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: f.value for f in self.figures}
        out["suite"] = self.suite
        out["goals"] = {f.name: f.goal for f in self.figures if f.goal}
        out["raw"] = self.raw
        return out

    def table(self) -> str:
        rows = [("figure", "value", "unit", "goal", "met")]
        for f in self.figures:
            met = f.meets_goal()
            rows.append((f.name, _fmt(f.value), f.unit, f.goal or "-",
                         "-" if met is None else ("yes" if met else "NO")))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """Run ``measure`` ``runs`` times; return the median and every sample."""
    samples = [measure() for _ in range(runs)]
    return statistics.median(samples), samples


def percentile(samples: list[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``samples``, nearest-rank."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def cpu_times() -> list[int] | None:
    """The machine's CPU time so far by kind (``/proc/stat``: user, nice, system, idle,
    iowait, irq, softirq, steal), in clock ticks; None where there is no ``/proc/stat``."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            return [int(field) for field in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of the machine's CPU time its hypervisor took between two ``cpu_times``
    readings (steal: time its virtual CPUs wanted to run and another guest ran instead);
    None if either reading is missing or no time passed."""
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta)
    return delta[7] / total if total > 0 else None


def process_ticks(pid: int | None = None) -> int | None:
    """The CPU time (user and system, every thread) process ``pid`` (this one if None) has
    used so far, in the clock ticks of ``cpu_times``; None where there is no ``/proc``."""
    try:
        with open(f"/proc/{'self' if pid is None else pid}/stat", encoding="ascii") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after the name, which may hold spaces
    return int(fields[11]) + int(fields[12])  # utime, stime


def others_share(before: list[int] | None, after: list[int] | None,
                 ours: int | None) -> float | None:
    """The share of the machine's CPU time that processes other than the benchmark's used
    between two ``cpu_times`` readings: the user and system time not spent by the
    benchmark's own processes (``ours``: their ``process_ticks`` over the same time). Time
    the kernel spends on interrupts — loopback traffic's included — is counted apart, so
    neither side has it. None if a reading is missing or no time passed."""
    if before is None or after is None or ours is None or len(before) < 8 or len(after) < 8:
        return None
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta)
    return max(0, delta[0] + delta[1] + delta[2] - ours) / total if total > 0 else None


def now() -> float:
    return time.perf_counter()


def write_json(report: Report, path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report.to_json(), fh, indent=2, sort_keys=True)
        fh.write("\n")
