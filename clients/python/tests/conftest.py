"""A real learnloop-api for the whole test session.

The server runs on a temporary data directory, on a free loopback port, with
``[auth] enabled = true`` and every plugin. The admin key is the one the
server writes to ``<data_dir>/admin.key`` on its first start; reader and
writer keys are created with the CLI (``learnloop keys create``).

Binaries: ``$LEARNLOOP_API_BIN`` and ``$LEARNLOOP_BIN``, else
``$CARGO_TARGET_DIR/debug/learnloop-api`` and ``.../learnloop`` (the repo's
``target`` without ``CARGO_TARGET_DIR``). Missing binaries skip the tests that
need the server, with the reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
CLIENT = Path(__file__).resolve().parents[1]


def _bin(env: str, name: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    return target / "debug" / name


def binaries() -> Dict[str, Path]:
    """The two binaries, or a skip (a failure under CI=true) naming what is missing."""
    found = {"api": _bin("LEARNLOOP_API_BIN", "learnloop-api"), "cli": _bin("LEARNLOOP_BIN", "learnloop")}
    missing = [f"{p} (set {'LEARNLOOP_API_BIN' if k == 'api' else 'LEARNLOOP_BIN'})"
               for k, p in found.items() if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        reason = ("learnloop binaries not found: " + ", ".join(missing)
                  + "; build them with `cargo build --locked -p learnloop-api -p learnloop-cli`")
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def _clean_env() -> Dict[str, str]:
    # The server's configuration is the file we write, nothing from the environment.
    return {k: v for k, v in os.environ.items() if not k.startswith("LEARNLOOP_")}


@dataclass
class Server:
    url: str
    data_dir: Path
    config: Path
    api_bin: Path
    cli_bin: Path
    proc: subprocess.Popen
    admin_key: str = ""
    keys: Dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.cli_bin), "--config", str(self.config), "--data-dir", str(self.data_dir), *args],
            capture_output=True, text=True, env=_clean_env(), timeout=120,
        )

    def create_key(self, role: str, workspace: str) -> str:
        done = self.cli("--json", "keys", "create", "--role", role, "--workspace", workspace, "--name", f"pytest {role}")
        if done.returncode != 0:
            raise RuntimeError(f"learnloop keys create failed ({done.returncode}): {done.stderr}")
        return json.loads(done.stdout)["key"]


def start_server(root: Path, api_bin: Path, cli_bin: Path, auth: bool = True) -> Server:
    data = root / "data"
    data.mkdir(parents=True)
    config = root / "learnloop.toml"
    config.write_text(
        "[auth]\nenabled = " + ("true" if auth else "false") + "\n\n"
        '[plugins]\nenabled = ["cost", "trust", "persona", "drift"]\n',
        encoding="utf-8",
    )
    out = open(root / "api.stdout", "w")
    err = open(root / "api.stderr", "w")
    proc = subprocess.Popen(
        [str(api_bin), "--config", str(config), "--data-dir", str(data), "--bind", "127.0.0.1:0"],
        stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=_clean_env(),
    )
    url = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = (root / "api.stdout").read_text(encoding="utf-8", errors="replace")
        m = re.search(r"listening on (http://\S+)", text)
        if m:
            url = m.group(1)
            break
        if proc.poll() is not None:
            raise RuntimeError(
                f"learnloop-api exited with {proc.returncode}: {(root / 'api.stderr').read_text(errors='replace')}"
            )
        time.sleep(0.05)
    if url is None:
        proc.kill()
        raise RuntimeError("learnloop-api did not say where it listens within 120 s")
    server = Server(url=url, data_dir=data, config=config, api_bin=api_bin, cli_bin=cli_bin, proc=proc)
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        stop_server(server)
        raise RuntimeError("learnloop-api did not become ready within 120 s")
    if auth:
        server.admin_key = (data / "admin.key").read_text(encoding="utf-8").strip()
    return server


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(10)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    bins = binaries()
    with tempfile.TemporaryDirectory(prefix="learnloop-pytest-") as tmp:
        s = start_server(Path(tmp), bins["api"], bins["cli"])
        try:
            s.keys["writer"] = s.create_key("writer", "default")
            s.keys["reader"] = s.create_key("reader", "default")
            s.keys["other"] = s.create_key("writer", "other")
            yield s
        finally:
            stop_server(s)
            if s.proc.returncode not in (0, None):
                print((Path(tmp) / "api.stderr").read_text(errors="replace"))


@pytest.fixture
def writer(server: Server):
    import learnloop

    with learnloop.Client(server.url, api_key=server.keys["writer"]) as c:
        yield c


@pytest.fixture
def reader(server: Server):
    import learnloop

    with learnloop.Client(server.url, api_key=server.keys["reader"]) as c:
        yield c


@pytest.fixture
def admin(server: Server):
    import learnloop

    with learnloop.Client(server.url, api_key=server.admin_key, workspace="default") as c:
        yield c


@pytest.fixture
def uid() -> str:
    """A prefix that makes this test's record ids its own."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def python_blocks(markdown: str) -> List[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)
