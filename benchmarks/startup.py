"""Start-up: how long `microdiff train` and `microdiff sample` take before their first step, and
what of it is importing.

Each command runs in a fresh process under ``python -X importtime``; the import of each top-level
package is attributed from that log (cumulative microseconds of its first import), and the time
to the first step is the whole run's wall time minus its steps, measured as the difference
between a run of 1 and a run of 1 + K steps (divided by K). Run it on an idle machine.

    python benchmarks/startup.py --runs 3 --root runs/startup
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("torch", "diffusers", "accelerate", "torch.utils.tensorboard", "scipy", "matplotlib", "PIL", "microdiff")
TINY_DATA = ["synth", "fiber", "--size", "64", "--per-class", "8"]


def run(args: list[str]) -> tuple[float, dict[str, float]]:
    """(wall seconds, {package: import seconds}) of ``python -X importtime -m microdiff ARGS``."""
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "microdiff", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode:
        raise SystemExit(f"microdiff {' '.join(args)} failed: {res.stderr[-500:]}")
    imports = {}
    for line in res.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)$", line)
        if m and m.group(3) in PACKAGES and m.group(3) not in imports:
            imports[m.group(3)] = int(m.group(1)) / 1e6
    return wall, imports


def measure(name: str, make_args, runs: int, extra_steps: int) -> str:
    one, more, imps = [], [], []
    for _ in range(runs):
        w, i = run(make_args(1))
        one.append(w)
        imps.append(i)
        more.append(run(make_args(1 + extra_steps))[0])
    step = max(0.0, (statistics.median(more) - statistics.median(one)) / extra_steps)
    first = statistics.median(one) - step
    keys = [k for k in PACKAGES if any(k in i for i in imps)]
    parts = ", ".join(f"{k} {statistics.median([i.get(k, 0.0) for i in imps]):.2f} s" for k in keys)
    return (f"- `{name}`: wall of a 1-step run {statistics.median(one):.2f} s (median of {runs}), one step "
            f"{step:.2f} s, so {first:.2f} s of fixed cost (start-up and, for train, the final checkpoint and export); "
            f"imports: {parts}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("runs/startup"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--extra-steps", type=int, default=4)
    a = ap.parse_args()
    data = a.root / "data"
    if not data.is_dir():
        subprocess.run([sys.executable, "-m", "microdiff", *TINY_DATA, "--out", str(data)], check=True,
                       capture_output=True)
    model = Path(__file__).resolve().parents[1] / "src" / "microdiff" / "assets" / "demo_model"
    lines = [measure("microdiff train --preset cpu", lambda k: ["train", "--data", str(data), "--out", str(a.root / "run"),
                                                                 "--steps", str(k), "--overwrite", "--no-progress",
                                                                 "--set", "train.sample_every=0"], a.runs, a.extra_steps),
             measure("microdiff sample (demo model, 1 image)", lambda k: ["sample", "--model", str(model), "--num", "1",
                                                                         "--class", "FVC50", "--steps", str(k),
                                                                         "--out", str(a.root / "s"), "--overwrite"],
                     a.runs, a.extra_steps)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
