"""What every benchmark here shares: measurements run in fresh child processes, and their memory.

Each measurement runs in its own subprocess (``python bench_x.py --child ...``), alternating between the
frameworks, so that both see the same machine load and each one's peak memory is its own.
"""
import json
import subprocess
import sys


def run_child(script, *args):
    """Run ``script --child args...`` and return the JSON dict its last output line holds."""
    out = subprocess.run([sys.executable, str(script), "--child", *map(str, args)], capture_output=True, text=True)
    if out.returncode:
        print(out.stderr, file=sys.stderr)
        raise SystemExit(f"benchmark child {' '.join(map(str, args))} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def alternate(script, rounds, *args):
    """``rounds`` child runs per framework, alternating minidl and PyTorch (minidl alone, with a note, when
    PyTorch is not installed). Returns {framework: [each child's dict]}."""
    try:
        import torch  # noqa: F401

        frameworks = ["minidl", "torch"]
    except ImportError:
        frameworks = ["minidl"]
        print("PyTorch is not installed: timing minidl alone (pip install torch for the ratio)")
    results = {f: [] for f in frameworks}
    for _ in range(rounds):
        for f in frameworks:
            results[f].append(run_child(script, f, *args))
    return results


def best_and_median(runs):
    """The best and the median of all the times (``"times"``) the child runs ``runs`` measured."""
    times = sorted(t for r in runs for t in r["times"])
    return times[0], times[len(times) // 2]


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
