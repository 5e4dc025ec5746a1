"""Static check of the TensorRT / GPU modules: mypy against the ``tensorrt-stubs`` type stubs.

No GPU and no TensorRT runtime exist on the development and CI machines, so this is the check
that the TensorRT code calls the TensorRT 10 Python API as it is declared (names, arguments,
return types). The stubs (``requirements/stubs.txt``, installed without dependencies) need three
repairs before mypy reads them, done on a copy in a temporary folder:

1. ``tensorrt-stubs`` 10.13 puts ``tensorrt/__init__.pyi`` into site-packages without a
   ``py.typed`` marker, so mypy ignores it there ("missing library stubs"); the copy is given to
   mypy through ``MYPYPATH`` instead.
2. Generated signatures that are not valid Python: parameters named ``in`` (plugin methods) and a
   parameter without default after defaults (``INetworkDefinition.add_scale_nd``).
3. A module-level ``bool: DataType`` (the TensorRT data type ``trt.bool``) shadows the builtin in
   every ``-> bool`` annotation; it is renamed ``bool_``. ``typing_extensions`` (used by the
   annotations but not imported) is imported, and the missing ``tensorrt_libs`` gets an empty stub.

Remaining diagnostics inside the stubs themselves are silenced (``ignore_errors``); every
diagnostic in this package's modules fails the test.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKED = [
    "gam_depth_ros/inference/tensorrt_backend.py",
    "gam_depth_ros/inference/tensorrt_engine.py",
    "gam_depth_ros/inference/tensorrt_support.py",
    "gam_depth_ros/inference/engine_cache.py",
    "gam_depth_ros/inference/layer_precision.py",
    "gam_depth_ros/inference/calibration.py",
    "gam_depth_ros/inference/gpu_processing.py",
    "gam_depth_ros/inference/accelerators.py",
    "test/test_tensorrt_gpu.py",  # the GPU tests never run here: check at least their calls
    "test/test_cuda.py",
]
MYPY_CONFIG = """[mypy]
python_version = 3.10
follow_imports = silent
disallow_untyped_defs = True
warn_unused_ignores = True
warn_redundant_casts = True
[mypy-test_tensorrt_gpu]
disallow_untyped_defs = False
check_untyped_defs = True
[mypy-test_cuda]
disallow_untyped_defs = False
check_untyped_defs = True
[mypy-onnxruntime.*]
ignore_missing_imports = True
[mypy-tensorrt.*]
ignore_errors = True
[mypy-tensorrt_bindings.*]
ignore_errors = True
[mypy-tensorrt_libs]
ignore_errors = True
"""


def _split_parameters(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def repair_signature(line: str) -> str:
    """Make one generated ``def`` line valid: rename ``in`` parameters, default after defaults."""
    match = re.match(r"^(\s*def \w+\()(.*)(\)\s*(?:->.*)?:.*)$", line)
    if not match:
        return line
    fixed, seen_default = [], False
    for parameter in _split_parameters(match.group(2)):
        name = parameter.split(":")[0].split("=")[0].strip()
        if name == "in":
            parameter = parameter.replace("in", "in_", 1)
        if "=" in parameter:
            seen_default = True
        elif seen_default and name and not name.startswith("*"):
            parameter += " = ..."
        fixed.append(parameter)
    return match.group(1) + ",".join(fixed) + match.group(3)


def repaired_stubs(site_packages: Path, out: Path) -> Path:
    """Copy ``tensorrt`` and ``tensorrt_bindings`` stubs from ``site_packages`` into ``out``, repaired."""
    for package in ("tensorrt", "tensorrt_bindings"):
        (out / package).mkdir(parents=True)
        for stub in (site_packages / package).glob("*.pyi"):
            lines = []
            for line in stub.read_text(encoding="utf-8").splitlines():
                if line.lstrip().startswith("def "):
                    line = repair_signature(line)
                elif line.startswith("bool: "):
                    line = "bool_: " + line[len("bool: "):]
                lines.append(line)
                if line == "import typing":
                    lines.append("import typing_extensions")
            (out / package / stub.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "tensorrt_libs.pyi").write_text("", encoding="utf-8")
    return out


def _stub_site() -> Path:
    spec = importlib.util.find_spec("tensorrt_stubs")
    if spec is None or spec.origin is None:
        pytest.fail("tensorrt-stubs is not installed: pip install --no-deps -r requirements/stubs.txt")
    site = Path(spec.origin).parents[1]
    if not (site / "tensorrt" / "__init__.pyi").is_file():
        pytest.fail(f"tensorrt-stubs layout changed: no tensorrt/__init__.pyi in {site}")
    return site


def run_mypy(files: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    stubs = repaired_stubs(_stub_site(), tmp_path / "stubs")
    config = tmp_path / "mypy.ini"
    config.write_text(MYPY_CONFIG, encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(stubs)}
    command = [sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir", str(tmp_path / "cache"),
               "--no-error-summary", *files]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_repair_signature():
    assert repair_signature("    def f(self, in: list[int], out: list[int]) -> int:") == (
        "    def f(self, in_: list[int], out: list[int]) -> int:"
    )
    assert repair_signature("    def g(self, a: int = None, b: int) -> X:") == (
        "    def g(self, a: int = None, b: int = ...) -> X:"
    )
    assert repair_signature("    def h(self, shape: tuple[int, int], input: str) -> None:") == (
        "    def h(self, shape: tuple[int, int], input: str) -> None:"
    )


def test_stubs_are_types_only_here():
    """What this machine has: TensorRT's stubs (an importable namespace package), no runtime."""
    from gam_depth_ros.inference.accelerators import tensorrt_available

    spec = importlib.util.find_spec("tensorrt")
    if spec is not None and spec.origin not in (None, "namespace"):
        pytest.skip("a real TensorRT is installed here")
    assert not tensorrt_available()


PROBE = """import tensorrt as trt


def run(context: trt.IExecutionContext, engine: trt.ICudaEngine, stream: int) -> bool:
    name: str = engine.get_tensor_name(0)
    context.set_tensor_address(name, 0)
    engine.num_io_tensorz
    return context.execute_async_v3(stream)
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory) -> str:
    """One mypy run (about 10 s) over this package's modules and a probe with one deliberate error."""
    tmp_path = tmp_path_factory.mktemp("mypy")
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    result = run_mypy([*CHECKED, str(probe)], tmp_path)
    assert not result.stderr.strip(), result.stderr
    return result.stdout


def test_mypy_finds_the_stubs_and_flags_api_misuse(mypy_output):
    """The check has teeth: a wrong TensorRT call is an error, right ones are not."""
    probe_lines = [line for line in mypy_output.splitlines() if "probe.py" in line]
    assert len(probe_lines) == 1 and 'has no attribute "num_io_tensorz"' in probe_lines[0], mypy_output


def test_tensorrt_modules_type_check(mypy_output):
    ours = [line for line in mypy_output.splitlines() if "probe.py" not in line]
    assert not ours, "\n".join(ours)
