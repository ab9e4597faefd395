"""Checks of a recorded demonstration's streams and the ``bag_to_zarr --report`` lines (ROS-free).

A stream is the header stamps (integer ns, in bag order) of one topic, or of one joint on a
joint-state topic that several drivers publish. Problems found here:

- stamps that go backwards (a stream must be recorded in stamp order),
- a gap between consecutive stamps longer than ``max_gap * dt`` (a dropped sensor or driver).

Non-finite joint values are found while reading (``dp_eval.bag_streams``); missing topics and
joints make reading fail. Every problem is a sentence naming the bag, the topic and the time.
"""

from __future__ import annotations

import numpy as np


def fmt_time(stamp_ns: int, start_ns: int | None = None) -> str:
    """'t = 12.345 s' (stamp seconds), with '(+1.234 s into the bag)' when the start is known."""
    out = f"t = {stamp_ns / 1e9:.3f} s"
    if start_ns is not None:
        out += f" (+{(stamp_ns - start_ns) / 1e9:.3f} s into the bag)"
    return out


def stream_problems(
    label: str,
    stamps_ns: np.ndarray,
    dt: float,
    max_gap: float,
    bag: str = "",
    start_ns: int | None = None,
    check_gaps: bool = True,
) -> list[str]:
    """Problems of one stream: stamps going backwards, gaps longer than ``max_gap * dt`` seconds.

    Args:
        label: what the stream is (topic, or 'topic [joint]').
        stamps_ns: (S,) int header stamps in bag order.
        dt: step period (s); max_gap: the longest allowed gap in steps.
        check_gaps: False for topics that only carry changes (a gripper command topic).
    """
    t = np.asarray(stamps_ns, dtype=np.int64)
    out = []
    if len(t) < 2:
        return out
    d = np.diff(t)
    back = np.flatnonzero(d < 0)
    if len(back):
        i = int(back[0])
        out.append(
            f"{bag}: {label}: stamps go backwards at {fmt_time(int(t[i + 1]), start_ns)} after "
            f"{t[i] / 1e9:.3f} s (message {i + 1}; {len(back)} such place(s)); expected the messages in "
            "stamp order"
        )
        t = np.sort(t)
        d = np.diff(t)
    if check_gaps:
        limit_ns = int(round(max_gap * dt * 1e9))
        long = np.flatnonzero(d > limit_ns)
        if len(long):
            i = int(long[np.argmax(d[long])])
            out.append(
                f"{bag}: {label}: gap of {d[i] / 1e9:.3f} s from {fmt_time(int(t[i]), start_ns)} to "
                f"{t[i + 1] / 1e9:.3f} s ({len(long)} gap(s) longer than --max-gap {max_gap:g} x dt "
                f"{dt:g} s = {limit_ns / 1e9:.3f} s)"
            )
    return out


def rate_hz(stamps_ns: np.ndarray) -> float:
    """Mean message rate (Hz) over the stream's span (0 for fewer than two messages)."""
    t = np.asarray(stamps_ns, dtype=np.int64)
    if len(t) < 2 or t.max() == t.min():
        return 0.0
    return (len(t) - 1) / ((int(t.max()) - int(t.min())) / 1e9)


def report_line(
    bag: str, length_s: float, steps: int, rates: dict[str, float], problems: list[str], notes: list[str]
) -> str:
    """One ``--report`` line of an episode: length, steps, rate per topic, then its problems or OK."""
    rate = ", ".join(f"{topic} {hz:.1f} Hz" for topic, hz in rates.items())
    head = f"{bag}: {length_s:.2f} s, {steps} steps" + (f", {rate}" if rate else "")
    tail = "; ".join(p.removeprefix(f"{bag}: ") for p in problems) if problems else "OK"
    extra = f" [{'; '.join(notes)}]" if notes else ""
    return f"{head}: {'PROBLEMS: ' if problems else ''}{tail}{extra}"


def report_summary(lines: list[tuple[str, int, float, bool]]) -> str:
    """The summary line: episodes, how many have problems, total steps and length."""
    bad = [bag for bag, _, _, ok in lines if not ok]
    steps = sum(n for _, n, _, ok in lines if ok)
    length = sum(s for _, _, s, ok in lines if ok)
    head = f"summary: {len(lines)} episode(s), {len(lines) - len(bad)} good ({steps} steps, {length:.1f} s)"
    return head + (f", {len(bad)} with problems: {bad}" if bad else ", no problems")


def streams_problems(s, dt: float, max_gap: float, bag: str = "") -> list[str]:
    """Every problem of one bag's streams (:class:`dp_eval.core.alignment.BagStreams`).

    The problems found while reading, then :func:`stream_problems` of every stream; the joints of
    one topic that share their stamps (one driver) are checked once, under one label.
    """
    groups: dict[tuple[str, bytes], list[str]] = {}
    for label, ts in s.stamps.items():
        groups.setdefault((label.split(" [")[0], np.asarray(ts).tobytes()), []).append(label)
    out = list(s.problems)
    for (topic, _), labels in groups.items():
        label = labels[0]
        if len(labels) > 1:
            label = f"{topic} [{', '.join(lb.split(' [', 1)[1].rstrip(']') for lb in labels)}]"
        gaps = topic not in s.no_gap_check
        out += stream_problems(label, s.stamps[labels[0]], dt, max_gap, bag, s.start_ns, check_gaps=gaps)
    return out
