"""The committed contract and generated code match what the server serves.

Fails when ``openapi.json``, ``models.py`` or ``_operations.py`` are stale:
run ``clients/python/scripts/generate`` and commit the result.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import httpx

from conftest import CLIENT

HINT = "stale: run clients/python/scripts/generate and commit clients/python/openapi.json and the generated files"


def load_generator():
    spec = importlib.util.spec_from_file_location("learnloop_generate", CLIENT / "scripts" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def served(server) -> dict:
    r = httpx.get(server.url + "/api/v1/openapi.json", timeout=30)
    r.raise_for_status()
    return r.json()


def test_committed_document_is_the_served_one(server):
    committed = json.loads((CLIENT / "openapi.json").read_text(encoding="utf-8"))
    assert json.dumps(served(server), sort_keys=True) == json.dumps(committed, sort_keys=True), HINT


def test_generated_files_are_current(server, tmp_path: Path):
    gen = load_generator()
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(served(server), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    assert gen.main(["--document", str(document), "--out", str(out)]) == 0
    for name in ("models.py", "_operations.py"):
        regenerated = (out / name).read_text(encoding="utf-8")
        committed = (CLIENT / "src" / "learnloop" / name).read_text(encoding="utf-8")
        assert regenerated == committed, f"{name} {HINT}"


def test_every_operation_has_a_method(server):
    """Each operation of the served document is a method of its class, sync and async."""
    import learnloop._operations as ops

    gen = load_generator()
    doc = json.loads(json.dumps(served(server), sort_keys=True))
    _, operations = gen.normalize(doc)
    assert operations, "the document has no operations"
    for o in operations:
        name = "CoreApi" if o.group == "core" else gen.pascal(o.group) + "Api"
        for cls in (getattr(ops, name), getattr(ops, "Async" + name)):
            assert callable(getattr(cls, o.name, None)), f"{o.method} {o.path}: no {cls.__name__}.{o.name}"
    plugins = {o.group for o in operations if o.group != "core"}
    assert plugins == set(ops.PLUGINS), "every plugin tag is a class in PLUGINS"
    assert {"cost", "trust", "persona", "drift"} <= plugins


def test_check_mode_reports_stale_files(tmp_path: Path, capsys):
    """--check fails, naming the file, when a generated file differs from the document's."""
    gen = load_generator()
    out = tmp_path / "pkg"
    out.mkdir()
    for name in ("models.py", "_operations.py"):
        (out / name).write_text((CLIENT / "src" / "learnloop" / name).read_text(encoding="utf-8"), encoding="utf-8")
    assert gen.main(["--document", str(CLIENT / "openapi.json"), "--out", str(out), "--check"]) == 0
    (out / "_operations.py").write_text("# edited by hand\n", encoding="utf-8")
    assert gen.main(["--document", str(CLIENT / "openapi.json"), "--out", str(out), "--check"]) == 1
    assert "_operations.py" in capsys.readouterr().err
