"""Machine-stall witnesses of bench_control: per-CPU C threads that show when a CPU was held off.

A C thread doing clock_nanosleep(TIMER_ABSTIME) at SCHED_FIFO 60, at 1 kHz, one pinned to each CPU,
runs beside a measured loop (each wakes for microseconds). A period of a witness longer than 1 ms
past its deadline is a stall of its CPU (vCPU preemption by the hypervisor, or a long
non-preemptible kernel path): :func:`attribute_stalls` counts the loop's late wake-ups that fell in
one. The same program at 50 Hz is bench_control's C baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

WITNESS_HZ = 1000.0  # the per-CPU C witnesses: any stall > 1 ms of a CPU shows in their periods


C_PROBE = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
  long period = atol(argv[1]); int n = atoi(argv[2]); int prio = atoi(argv[3]);
  int cpu = argc > 4 ? atoi(argv[4]) : -1;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu >= 0) { CPU_SET(cpu, &set); sched_setaffinity(0, sizeof(set), &set); }
  long long *t = malloc(sizeof(long long) * n);
  struct sched_param sp = {.sched_priority = prio};
  if (prio > 0 && sched_setscheduler(0, SCHED_FIFO, &sp) != 0) fprintf(stderr, "no SCHED_FIFO\n");
  struct timespec next, now;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (int i = 0; i < n; i++) {
    next.tv_nsec += period;
    while (next.tv_nsec >= 1000000000L) { next.tv_nsec -= 1000000000L; next.tv_sec++; }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) != 0) {}
    clock_gettime(CLOCK_MONOTONIC, &now);
    t[i] = now.tv_sec * 1000000000LL + now.tv_nsec;
  }
  for (int i = 0; i < n; i++) printf("%lld\n", t[i]);
  return 0;
}
"""


def build_c_probe(tmp: str) -> str | None:
    """Compiles the C baseline; None when no compiler is found or it fails."""
    import shutil

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src, exe = os.path.join(tmp, "probe.c"), os.path.join(tmp, "probe")
    Path(src).write_text(C_PROBE)
    if subprocess.run([cc, "-O2", "-o", exe, src], capture_output=True).returncode != 0:
        return None
    return exe


def child_c(duration: float, out: str, exe: str, rate_hz: float) -> None:
    """The C baseline: the witness program alone at ``rate_hz`` (SCHED_FIFO 60), its ticks to ``out``."""
    prio = 0 if os.environ.get("DP_BENCH_NO_RT") else 60
    n = int(duration * rate_hz)
    res = subprocess.run([exe, str(int(1e9 / rate_hz)), str(n), str(prio)], capture_output=True, text=True)
    ticks = [(int(line) * 1e-9, 0.0) for line in res.stdout.split()]
    rt = f"SCHED_FIFO priority {prio}" if prio and not res.stderr else "normal priority"
    Path(out).write_text(json.dumps({"rt": f"{rt}; C clock_nanosleep(TIMER_ABSTIME)", "ticks": ticks}))


def start_witnesses(exe: str, duration: float, no_rt: bool) -> list[subprocess.Popen]:
    """One witness per CPU of this process's affinity, for ``duration`` s (stdout: wake-up times, ns)."""
    n = int(duration * WITNESS_HZ)
    return [
        subprocess.Popen(
            [exe, str(int(1e9 / WITNESS_HZ)), str(n), "0" if no_rt else "60", str(cpu)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for cpu in sorted(os.sched_getaffinity(0))
    ]


def attribute_stalls(t, witnesses, rate_hz: float, late_ms: float = 2.0) -> dict:
    """Which of the measured loop's wake-ups late by > late_ms fall in a stall of a CPU: a period
    in which the 1 kHz C witness pinned to that CPU (SCHED_FIFO 60, running at the same time) was
    itself held off for > 1 ms. Such stalls hit any thread on that CPU whatever it does
    (vCPU preemption by the hypervisor, a long non-preemptible path of the guest kernel)."""
    import numpy as np

    wp = 1.0 / WITNESS_HZ
    stalls, per_cpu = [], []
    for witness in witnesses:
        w = witness[(witness >= t[0] - 1.0) & (witness <= t[-1] + 1.0)]
        held = np.diff(w) - wp  # how long the witness was held off past its deadline [s]
        idx = np.flatnonzero(held > 1e-3)
        stalls += [(w[j + 1] - held[j], w[j + 1]) for j in idx]
        per_cpu.append(int((held > late_ms * 1e-3).sum()))
    lateness = np.diff(t) - 1.0 / rate_hz  # > 0: woke up late
    late = np.flatnonzero(lateness > late_ms * 1e-3)
    shared = sum(any(a < t[i + 1] and b > t[i + 1] - lateness[i] for a, b in stalls) for i in late)
    # Period error over the periods that overlap no CPU stall: what the loop's own design gives.
    a = np.asarray([x[0] for x in stalls])
    b = np.asarray([x[1] for x in stalls])
    clean = ~((a[None, :] < t[1:, None]) & (b[None, :] > t[:-1, None])).any(axis=1)
    err_clean = np.abs(lateness[clean]) * 1e3
    return {
        "late": int(late.size),
        "late_shared": int(shared),
        "cpu_stalls": per_cpu,
        "clean_fraction": float(clean.mean()),
        "clean_p99_ms": float(np.percentile(err_clean, 99)) if err_clean.size else float("nan"),
    }
