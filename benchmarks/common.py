"""What every benchmark here shares: a clean environment, child processes that alternate, their memory.

Each measurement runs in its own subprocess (``python bench_x.py --child ...``), alternating between the
frameworks, so that both see the same machine load and each one's peak memory is its own.

``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``, which some environments set for old OpenBLAS builds, make
NumPy's BLAS run other kernels than a user's would (on an AVX-512 machine, AVX2 ones: VGG19's forward took
1.3-1.7× as long). ``clean_environment`` removes both for the benchmark's run (by restarting the script
without them), and only there.
"""
import json
import os
import subprocess
import sys

#: Environment variables that change which kernels NumPy's OpenBLAS runs; unset for every benchmark run.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def clean_environment():
    """Restart this script without ``BLAS_OVERRIDES`` in the environment, if any is set (see above)."""
    if any(name in os.environ for name in BLAS_OVERRIDES):
        env = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
        print(f"(unsetting {', '.join(n for n in BLAS_OVERRIDES if n in os.environ)} for this run)", flush=True)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def load_average():
    """The 1-minute load average, or None where the system does not report it."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def run_child(script, *args, env=None):
    """Run ``script --child args...`` and return the JSON dict its last output line holds."""
    out = subprocess.run([sys.executable, str(script), "--child", *map(str, args)], capture_output=True, text=True,
                         env=env)
    if out.returncode:
        print(out.stderr, file=sys.stderr)
        raise SystemExit(f"benchmark child {' '.join(map(str, args))} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def frameworks():
    """["minidl", "torch"], or ["minidl"] with a note when PyTorch is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: timing minidl alone (pip install torch for the ratios)")
        return ["minidl"]
    return ["minidl", "torch"]


def alternate(script, rounds, *args, env=None, names=None):
    """``rounds`` child runs per framework, alternating minidl and PyTorch. Returns {framework: [each child's
    dict]}, each dict with the load average at its start (``"load"``)."""
    names = names or frameworks()
    results = {f: [] for f in names}
    for _ in range(rounds):
        for f in names:
            load = load_average()
            results[f].append({**run_child(script, f, *args, env=env), "load": load})
    return results


def best_and_median(runs, key="times"):
    """The best and the median of all the times (``key``) the child runs ``runs`` measured."""
    times = sorted(t for r in runs for t in r[key])
    return times[0], times[len(times) // 2]


def ratio_line(best, median):
    """The ratios minidl / PyTorch of the best and of the median times, as printed by every benchmark."""
    return (f"ratio minidl / PyTorch: {best['minidl'] / best['torch']:.2f} of the best times, "
            f"{median['minidl'] / median['torch']:.2f} of the medians")


def load_line(results):
    """The load averages the runs started at, for the record beside the figures."""
    loads = [r["load"] for runs in results.values() for r in runs if r.get("load") is not None]
    return f"load average during the runs: {min(loads):.2f}-{max(loads):.2f}" if loads else ""


def memory_mb(field="VmHWM"):
    """VmRSS (resident now) or VmHWM (peak resident) of this process, from /proc/self/status, in MiB.

    (Not ru_maxrss: Linux carries it over from the parent across fork and exec, so a child would report
    the parent's peak when that one is higher.)
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")
