"""The command-line entry point (the README's main job runs through it)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from jaxwalras import cli


def test_version(capsys):
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __import__("jaxwalras").__version__


def test_demo_multiunit_section(capsys):
    from jaxwalras.demo import demo_multiunit
    lines = []
    demo_multiunit(lines.append, n_markets=40)
    text = "\n".join(lines)
    assert "[4, 2]" in text                      # the worked example: p* = (4, 2)
    assert "allocations Walrasian: 40/40" in text
    assert "prices equal the HiGHS LP on 20/20" in text


def test_unknown_command_is_a_clear_error():
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "jaxwalras.cli", "version"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip()
