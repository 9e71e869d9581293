"""Run every benchmark in this folder with its default workload (``make bench``).

Each script prints its markdown table and writes JSON to ``benchmarks/results/``;
``--quick`` passes ``--quick`` to every script (a smoke run of a few seconds each).
"""
from __future__ import annotations

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    rc = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n### {script.name}\n", flush=True)
        cmd = [sys.executable, str(script)] + (["--quick"] if quick else [])
        rc |= subprocess.call(cmd)
    return rc


if __name__ == "__main__":
    sys.exit(main())
