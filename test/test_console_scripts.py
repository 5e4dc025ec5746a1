"""Every command the README shows is a console script of setup.py, and ``make venv`` put it in the
virtual environment's ``bin`` (the one running these tests), where it runs the repository's code."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ros_helpers import ros_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.prefix) / "bin"
# A command name standing alone: not part of a path, a module name or a longer word.
COMMAND = re.compile(r"(?<![\w/.-])(gam-depth-[a-z]+(?:-[a-z]+)*|depth_node)(?![\w.-])")


def readme_commands() -> set[str]:
    return set(COMMAND.findall((ROOT / "README.md").read_text()))


def console_scripts() -> dict[str, str]:
    """name -> ``module:function`` from setup.py's entry_points (read, not executed)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entries = ast.literal_eval(node.value)["console_scripts"]
            return dict(tuple(part.strip() for part in entry.split("=", 1)) for entry in entries)
    raise AssertionError("setup.py has no entry_points")


def test_readme_commands_are_console_scripts():
    commands = readme_commands()
    assert {"gam-depth-bag-eval", "gam-depth-export", "gam-depth-build-engine", "depth_node"} <= commands
    assert commands <= set(console_scripts()), commands - set(console_scripts())


@pytest.mark.parametrize("name", sorted(readme_commands()))
def test_readme_command_is_in_the_venv_and_runs(name, tmp_path):
    script = BIN / name
    assert script.is_file() and os.access(script, os.X_OK), f"{script} missing: run `make venv`"
    env = os.environ | ros_env(tmp_path / "ros_log") | {"PYTHONPATH": str(ROOT)}
    if name == "depth_node":  # starts rclpy: a missing model must stop it with the file named
        missing = tmp_path / "missing.onnx"
        result = subprocess.run([str(script), "--ros-args", "-p", f"model_path:={missing}"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and str(missing) in result.stderr, result.stderr
        return
    result = subprocess.run([str(script), "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and name in result.stdout.splitlines()[0], result.stdout[:300]
