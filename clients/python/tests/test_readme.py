"""The README's integration example runs as written against the test server."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import CLIENT, python_blocks


def test_the_five_minute_example_runs(server, tmp_path):
    blocks = python_blocks((CLIENT / "README.md").read_text(encoding="utf-8"))
    assert blocks, "README.md has no python block"
    example = tmp_path / "example.py"
    example.write_text(blocks[0], encoding="utf-8")
    env = {**os.environ, "LEARNLOOP_URL": server.url, "LEARNLOOP_API_KEY": server.keys["writer"]}
    for run in (1, 2):  # a second run finds every record stored: duplicates, no conflict
        done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, env=env,
                              timeout=120, cwd=tmp_path)
        assert done.returncode == 0, f"run {run}:\n{done.stdout}\n{done.stderr}"
    assert "route to:" in done.stdout, done.stdout
