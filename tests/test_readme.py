"""The README's API tour must run: execute every ```python block in order, in one namespace."""
from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_snippets_run():
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python snippets"
    ns: dict = {}
    for k, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md[python block {k}]", "exec"), ns)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"README python block {k} failed: {exc!r}\n{block}") from exc


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
