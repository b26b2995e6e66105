"""The package's source is Python 3.9 syntax (checked when a python3.9 is on the machine)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import CLIENT


def python39():
    for candidate in ("python3.9", str(Path.home() / ".pyenv/versions/3.9.18/bin/python3.9")):
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found and subprocess.run([found, "-c", "import sys; assert sys.version_info[:2] == (3, 9)"],
                                    capture_output=True).returncode == 0:
            return found
    return None


def test_sources_compile_under_python_3_9(tmp_path):
    py = python39()
    if py is None:
        pytest.skip("no python3.9 on this machine")
    sources = sorted(str(p) for p in (CLIENT / "src" / "learnloop").glob("*.py"))
    code = ("import sys, ast\n"
            "for f in sys.argv[1:]:\n"
            "    compile(open(f, encoding='utf-8').read(), f, 'exec', flags=ast.PyCF_ONLY_AST)\n")
    done = subprocess.run([py, "-c", code, *sources], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
