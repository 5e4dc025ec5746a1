"""Security: no code path deserialises untrusted data unsafely (pickle, unsafe YAML, eval).

The scan covers every Python file that ships or runs on data (runtime package, training, scripts,
benchmarks, launch). A malicious pickle checkpoint being refused is tested in test_export.py;
paths from parameters are checked where they are used (test_node.py, test_backends.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for folder in ("gam_depth_ros", "training", "scripts", "bench", "launch")
                 for p in (REPO / folder).rglob("*.py"))
RULES = {
    "pickle module": re.compile(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b", re.M),
    "unsafe yaml.load": re.compile(r"yaml\.(load|load_all|unsafe_load|full_load)\((?![^)]*SafeLoader)"),
    "torch.load without weights_only=True": re.compile(r"torch\.load\((?![^)]*weights_only=True)[^)]*\)"),
    "np.load with allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "eval/exec": re.compile(r"(?<![\w.])(eval|exec)\("),
    "shell=True": re.compile(r"shell\s*=\s*True"),
}


def test_the_scan_sees_the_sources():
    assert len(SOURCES) > 50 and any(p.name == "checkpoint.py" for p in SOURCES)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_no_unsafe_deserialisation(rule):
    offenders = [f"{p.relative_to(REPO)}:{text[:m.start()].count(chr(10)) + 1}"
                 for p in SOURCES for text in [p.read_text()] for m in RULES[rule].finditer(text)]
    assert not offenders, f"{rule}: {offenders}"


@pytest.mark.parametrize("snippet, rule", [
    ("import pickle", "pickle module"), ("yaml.load(stream)", "unsafe yaml.load"),
    ("torch.load(path)", "torch.load without weights_only=True"), ("eval(text)", "eval/exec"),
])
def test_the_rules_catch_what_they_name(snippet, rule):
    assert RULES[rule].search(snippet)
    assert not RULES[rule].search("yaml.safe_load(s); torch.load(p, weights_only=True); model.eval()")
