"""Packaging: an SPDX license string with its LICENSE file (setuptools ≥ 77), and `make run`
installing only what running needs."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_license_is_an_spdx_string_with_its_file():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "MIT"
    assert project["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert "setuptools>=77" in project["build-system"]["requires"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_installs_no_dev_tools_and_make_test_does(tmp_path):
    def planned(target: str) -> list[str]:
        dry = subprocess.run(
            ["make", "-n", f"VENV={tmp_path / 'venv'}", target],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return [line for line in dry.stdout.splitlines() if "pip install -q -e" in line]

    assert [line.split()[-1] for line in planned("run")] == ['".[bert]"']
    assert [line.split()[-1] for line in planned("test")] == ['".[bert,dev]"']
