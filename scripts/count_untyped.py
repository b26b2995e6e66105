"""Counts the answers openapi-python-client could not type.

Usage: count_untyped.py OPENAPI_JSON GENERATED_PACKAGE_DIR

For every operation of the document the generator must have written a
module, and in it every 2xx answer must be parsed into a typed value: a
model with at least one declared field (``Model.from_dict``), a list of
such, or text (``response.text`` for text/plain and text/html). An answer
parsed as bare ``response.json()``, ``cast(Any, ...)``, ``None``, or into a
model that declares no field is untyped. Prints each untyped answer and
exits 1 if there is any (scripts/contract-check runs it).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def snake(op_id: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", op_id.lower())


def model_fields(gen: Path) -> dict[str, int]:
    """Model class name -> number of declared attrs fields."""
    out: dict[str, int] = {}
    for f in (gen / "models").glob("*.py"):
        text = f.read_text()
        for m in re.finditer(r"^class (\w+):\n(.*?)(?=^class |\Z)", text, re.S | re.M):
            name, body = m.group(1), m.group(2)
            fields = [
                line
                for line in body.splitlines()
                if re.match(r"^    [a-z_][a-z0-9_]*: ", line) and "additional_properties" not in line
            ]
            out[name] = len(fields)
    return out


def main() -> int:
    doc = json.loads(Path(sys.argv[1]).read_text())
    gen = Path(sys.argv[2])
    fields = model_fields(gen)
    modules = {p.stem: p for p in (gen / "api").rglob("*.py") if p.stem != "__init__"}
    problems: list[str] = []
    total = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            op_id = op["operationId"]
            mod = modules.get(snake(op_id))
            if mod is None:
                problems.append(f"{op_id} ({method.upper()} {path}): no module was generated")
                continue
            text = mod.read_text()
            for status in sorted(s for s in op["responses"] if s.startswith("2")):
                total += 1
                block = re.search(
                    rf"if response.status_code == {status}:\n(.*?)return response_{status}\n", text, re.S
                )
                if block is None:
                    problems.append(f"{op_id} {status}: not parsed at all")
                    continue
                body = block.group(1)
                models = re.findall(r"(\w+)\.from_dict\(", body)
                if models:
                    empty = [m for m in models if fields.get(m, 0) == 0]
                    if empty:
                        problems.append(f"{op_id} {status}: model(s) without fields: {', '.join(empty)}")
                elif "response.text" in body:
                    pass
                else:
                    problems.append(f"{op_id} {status}: untyped ({body.strip().splitlines()[0]})")
    for p in problems:
        print(f"untyped: {p}")
    print(f"count_untyped: {total} answers of {sum(len(i) for i in doc['paths'].values())} operations, {len(problems)} untyped")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
