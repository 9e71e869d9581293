"""Execute every notebook in this folder and store its outputs (figures included) in place.

``make notebooks`` runs it; the test suite executes the notebooks too (without writing),
so stored outputs are what the documentation site renders.
"""
from __future__ import annotations

import pathlib
import sys
import time

import nbclient
import nbformat

HERE = pathlib.Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    paths = [HERE / n for n in names] if names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        t0 = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(HERE)}}).execute()
        nbformat.write(nb, path)
        images = sum("image/png" in o.get("data", {}) for c in nb.cells
                     for o in c.get("outputs", []))
        print(f"{path.name}: executed in {time.perf_counter() - t0:.1f} s, {images} figures")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
