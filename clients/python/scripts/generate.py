#!/usr/bin/env python3
"""Generates the typed parts of the learnloop Python client from the API document.

Reads an OpenAPI document (default: ``clients/python/openapi.json``, the one
``learnloop-api`` serves at ``GET /api/v1/openapi.json``) and writes:

* ``src/learnloop/models.py``: pydantic v2 models, made by the pinned
  ``datamodel-code-generator`` from the document's ``components/schemas``
  plus every inline request or response object (hoisted into components
  first, named ``<Operation>Request`` / ``<Operation>Response``);
* ``src/learnloop/_operations.py``: one class per plugin tag (``CostApi``,
  ``TrustApi``, ...) and one for the core routes (``CoreApi``), each with a
  typed method per operation, and their ``Async`` twins.

Method names: the ``operationId`` in snake case, without the ``<plugin>_``
prefix on a plugin's class. An operation without an ``operationId`` is named
from its method and path (see :func:`fallback_name`). Path parameters are
positional; query parameters, the request body's fields and ``workspace``
are keyword arguments; the return type is the success response's schema.

``--check`` compares instead of writing and exits 1 naming the files that
differ. ``clients/python/scripts/generate`` fetches the document from a fresh
server and runs this script.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import keyword
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

DATAMODEL_CODEGEN_VERSION = "0.45.0"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DOCUMENT = ROOT / "openapi.json"
DEFAULT_OUT = ROOT / "src" / "learnloop"
HTTP_METHODS = ["get", "put", "post", "delete", "patch"]

# Names datamodel-code-generator imports into models.py: a schema may not take them.
RESERVED_MODEL_NAMES = {
    "Any", "AnyUrl", "Annotated", "AwareDatetime", "BaseModel", "ConfigDict", "Decimal", "Dict", "Enum",
    "Field", "List", "Literal", "NaiveDatetime", "Optional", "RootModel", "Union", "UUID", "date",
    "datetime", "time", "timedelta", "IntEnum", "StrEnum", "Models", "Operations",
}
# Attributes of learnloop.Client / AsyncClient (CoreApi's methods live on them).
RESERVED_CORE = {
    "predict", "outcome", "ingest", "batcher", "close", "aclose", "request", "workspace", "base_url",
    "retry", "plugins",
}
# Hand-written methods of the plugin classes' subclasses.
RESERVED_PLUGIN = {"assign_local", "request"}


class GenerateError(Exception):
    """The document cannot be turned into a client; the message says why."""


# ---------------------------------------------------------------- names


def pascal(text: str) -> str:
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", text) if p]
    name = "".join(p[0].upper() + p[1:] for p in parts) or "Model"
    return "M" + name if name[0].isdigit() else name


def snake(text: str) -> str:
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    s = re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower()
    s = re.sub(r"_+", "_", s) or "x"
    if s[0].isdigit():
        s = "n_" + s
    return s


def identifier(text: str) -> str:
    """A Python identifier for a wire name: kept when valid, else in snake case; keywords get ``_``."""
    name = text if text.isidentifier() else snake(text)
    if keyword.iskeyword(name) or name in ("self", "cls"):
        name += "_"
    return name


def singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ss", "us")):
        return word
    if word.endswith("s"):
        return word[:-1]
    return word


def is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def fallback_name(method: str, path: str, group: str, paths: Dict[str, Any]) -> str:
    """A name for an operation without ``operationId``, from its method and path.

    Words are the path's literal segments after ``/api/v1[/<plugin>]``, a
    segment followed by a parameter in the singular (``/models/{model}/drift``:
    ``model_drift``). GET: ``list_<words>`` when the path also has items
    (``/agents`` next to ``/agents/{agent}``), else ``get_<words>``. POST to
    one literal segment: that segment (``/route``: ``route``), or
    ``create_<singular>`` when the path also answers GET (``/ab_tests``:
    ``create_ab_test``); POST ending in a literal: ``<last>_<rest>``
    (``/alerts/{id}/ack``: ``ack_alert``). PUT: ``set_<words>``; DELETE:
    ``delete_<words>``.
    """
    prefix = "/api/v1" if group == "core" else f"/api/v1/{group}"
    rel = path[len(prefix):] if path.startswith(prefix + "/") else path
    segs = [s for s in rel.split("/") if s]
    words: List[str] = []
    for i, s in enumerate(segs):
        if is_param(s):
            continue
        followed = i + 1 < len(segs) and is_param(segs[i + 1])
        words.append(snake(singular(s) if followed else s))
    last_literal = bool(segs) and not is_param(segs[-1])
    joined = "_".join(words) or "root"
    m = method.lower()
    if m == "get":
        if last_literal and any(p.startswith(path + "/{") for p in paths):
            return "list_" + joined
        return "get_" + joined
    if m == "post":
        if not last_literal:
            return "post_" + joined
        if len(words) == 1:
            if "get" in paths.get(path, {}):
                return "create_" + singular(words[0])
            return words[0]
        return words[-1] + "_" + "_".join(words[:-1])
    if m == "put":
        return "set_" + joined
    return m + "_" + joined


# ---------------------------------------------------------------- document


def walk_refs(node: Any, rename: Dict[str, str]) -> Any:
    """A copy of ``node`` with ``#/components/schemas/X`` refs renamed."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/"):
                name = v[len("#/components/schemas/"):].replace("~1", "/").replace("~0", "~")
                out[k] = "#/components/schemas/" + rename.get(name, name)
            else:
                out[k] = walk_refs(v, rename)
        return out
    if isinstance(node, list):
        return [walk_refs(v, rename) for v in node]
    return node


def worthy(schema: Any) -> bool:
    """An object schema with named properties: it becomes a model."""
    return (
        isinstance(schema, dict)
        and "$ref" not in schema
        and schema.get("type", "object") == "object"
        and isinstance(schema.get("properties"), dict)
        and bool(schema["properties"])
    )


def is_enum(schema: Any) -> bool:
    return isinstance(schema, dict) and "enum" in schema and "$ref" not in schema


def json_content(content: Any) -> Optional[Tuple[str, Any]]:
    """(media type, schema) of the JSON entry of a ``content`` map, else the first entry."""
    if not isinstance(content, dict) or not content:
        return None
    for media in sorted(content):
        if "json" in media:
            return media, (content[media] or {}).get("schema")
    media = sorted(content)[0]
    return media, (content[media] or {}).get("schema")


class Param:
    def __init__(self, name: str, location: str, required: bool, schema: Any, description: str) -> None:
        self.name = name
        self.location = location
        self.required = required
        self.schema = schema
        self.description = description
        self.py = identifier(name)


class Operation:
    def __init__(self, method: str, path: str, op: Dict[str, Any], group: str, name: str, full: str) -> None:
        self.method = method.upper()
        self.path = path
        self.op = op
        self.group = group
        self.name = name
        self.full = full
        self.params: List[Param] = []
        self.body_schema: Any = None
        self.body_required = False
        self.responses: List[Tuple[int, Optional[str], Any]] = []


def resolve_param(doc: Dict[str, Any], p: Dict[str, Any]) -> Dict[str, Any]:
    if "$ref" in p:
        ref = p["$ref"]
        prefix = "#/components/parameters/"
        if not ref.startswith(prefix):
            raise GenerateError(f"parameter $ref {ref!r}: only {prefix}... is supported")
        target = doc.get("components", {}).get("parameters", {}).get(ref[len(prefix):])
        if target is None:
            raise GenerateError(f"parameter $ref {ref!r} names no parameter")
        return target
    return p


def normalize(doc: Dict[str, Any]) -> Tuple[Dict[str, Any], List[Operation]]:
    """The schemas for the model generator (names sanitized, inline objects hoisted) and the operations."""
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        raise GenerateError("the document has no `paths` object: is it an OpenAPI document?")
    raw_schemas = dict(doc.get("components", {}).get("schemas", {}) or {})
    rename: Dict[str, str] = {}
    taken: Set[str] = set()
    for name in sorted(raw_schemas):
        new = pascal(name)
        if new in RESERVED_MODEL_NAMES:
            new += "Model"
        base, n = new, 2
        while new in taken:
            new, n = f"{base}{n}", n + 1
        taken.add(new)
        rename[name] = new
    schemas: Dict[str, Any] = {rename[k]: walk_refs(v, rename) for k, v in raw_schemas.items()}
    paths = walk_refs(doc["paths"], rename)

    def hoist(schema: Any, wanted: str) -> Any:
        if not worthy(schema):
            return schema
        name, n = wanted, 2
        while name in schemas or name in RESERVED_MODEL_NAMES:
            name, n = f"{wanted}{n}", n + 1
        schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    raw_ops: List[Tuple[str, str, Dict[str, Any], Dict[str, Any]]] = []
    for path in sorted(paths):
        item = paths[path] or {}
        for method in HTTP_METHODS:
            if isinstance(item.get(method), dict):
                raw_ops.append((path, method, item[method], item))

    # A tag is a plugin's when every operation carrying it is under /api/v1/<tag>/.
    tagged: Dict[str, List[str]] = {}
    for path, _, op, _ in raw_ops:
        for t in op.get("tags", []) or []:
            tagged.setdefault(t, []).append(path)
    plugins = {
        t for t, ps in tagged.items()
        if re.fullmatch(r"[a-z][a-z0-9_-]*", t) and all(p.startswith(f"/api/v1/{t}/") for p in ps)
    }

    ops: List[Operation] = []
    names: Dict[Tuple[str, str], Operation] = {}
    for path, method, op, item in raw_ops:
        group = next((t for t in op.get("tags", []) or [] if t in plugins), "core")
        opid = op.get("operationId")
        if opid:
            name = snake(opid)
            if group != "core" and name.startswith(group.replace("-", "_") + "_"):
                name = name[len(group) + 1:]
            full = opid
        else:
            name = fallback_name(method, path, group, paths)
            full = name if group == "core" else f"{group}_{name}"
        name = identifier(name)
        key = (group, name)
        if key in names:
            other = names[key]
            if opid:
                raise GenerateError(
                    f"{method.upper()} {path} and {other.method} {other.path} both give the method name "
                    f"{name!r} on the {group} class: operationIds must be unique"
                )
            name = f"{name}_{method}"
            key = (group, name)
        reserved = RESERVED_CORE if group == "core" else RESERVED_PLUGIN
        if name in reserved or name.startswith("_"):
            raise GenerateError(
                f"{method.upper()} {path}: its method name {name!r} would hide the client's own "
                f"{name!r}; give the operation another operationId"
            )
        o = Operation(method, path, op, group, name, full)
        names[key] = o
        merged: Dict[Tuple[str, str], Dict[str, Any]] = {}
        for p in list(item.get("parameters", []) or []) + list(op.get("parameters", []) or []):
            p = resolve_param(doc, p)
            merged[(p.get("name"), p.get("in"))] = p
        for (pname, location), p in merged.items():
            if location not in ("path", "query"):
                continue  # headers and cookies: the client sets its own
            o.params.append(
                Param(pname, location, bool(p.get("required")) or location == "path", p.get("schema"),
                      p.get("description", ""))
            )
        rb = op.get("requestBody")
        if isinstance(rb, dict):
            found = json_content(rb.get("content"))
            if found is not None:
                o.body_schema = hoist(found[1], pascal(full) + "Request")
                o.body_required = bool(rb.get("required"))
        for code in sorted(op.get("responses", {}) or {}):
            if not (len(code) == 3 and code.startswith("2") and code.isdigit()):
                continue
            resp = op["responses"][code] or {}
            found = json_content(resp.get("content"))
            if found is None:
                o.responses.append((int(code), None, None))
                continue
            suffix = "Response" if not o.responses else f"Response{code}"
            schema = hoist(found[1], pascal(full) + suffix) if "json" in found[0] else found[1]
            o.responses.append((int(code), found[0], schema))
        ops.append(o)
    models_doc = {
        "openapi": doc.get("openapi", "3.1.0"),
        "info": {"title": doc.get("info", {}).get("title", "learnloop"), "version": doc.get("info", {}).get("version", "0")},
        "paths": {},
        "components": {"schemas": {k: schemas[k] for k in sorted(schemas)}},
    }
    return models_doc, ops


# ---------------------------------------------------------------- models.py


def check_generator() -> None:
    try:
        from importlib.metadata import version
        found = version("datamodel-code-generator")
    except Exception as e:  # noqa: BLE001 - any failure means "not installed"
        raise GenerateError(
            f"datamodel-code-generator=={DATAMODEL_CODEGEN_VERSION} is not installed ({e}); "
            "install the test extras: pip install './clients/python[test]'"
        ) from None
    if found != DATAMODEL_CODEGEN_VERSION:
        raise GenerateError(
            f"datamodel-code-generator {found} is installed; this script is pinned to "
            f"{DATAMODEL_CODEGEN_VERSION} (pip install './clients/python[test]')"
        )


def run_models(models_doc: Dict[str, Any]) -> str:
    check_generator()
    with tempfile.TemporaryDirectory(prefix="learnloop-gen-") as tmp:
        src = Path(tmp) / "openapi.json"
        out = Path(tmp) / "models.py"
        src.write_text(json.dumps(models_doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        cmd = [
            sys.executable, "-m", "datamodel_code_generator",
            "--input", str(src), "--input-file-type", "openapi", "--output", str(out),
            "--output-model-type", "pydantic_v2.BaseModel", "--target-python-version", "3.9",
            "--disable-timestamp", "--enable-version-header", "--extra-fields", "allow",
            "--use-double-quotes", "--enum-field-as-literal", "all", "--field-constraints",
            "--use-schema-description", "--base-class", "learnloop._model.Model",
            "--formatters", "black", "isort",
        ]
        done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if done.returncode != 0:
            raise GenerateError(f"datamodel-codegen failed ({done.returncode}):\n{done.stderr.strip()}")
        return out.read_text(encoding="utf-8")


def model_classes(models_src: str) -> Dict[str, str]:
    """Class name -> kind (``model``, ``root``, ``enum``) of the generated models."""
    out: Dict[str, str] = {}
    for node in ast.parse(models_src).body:
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(b) for b in node.bases}
            if any("Enum" in b for b in bases):
                out[node.name] = "enum"
            elif any(b.startswith("RootModel") for b in bases):
                out[node.name] = "root"
            else:
                out[node.name] = "model"
    return out


# ---------------------------------------------------------------- _operations.py


class Types:
    def __init__(self, schemas: Dict[str, Any], classes: Dict[str, str]) -> None:
        self.schemas = schemas
        self.classes = classes

    def ref(self, ref: str) -> Tuple[str, Any]:
        prefix = "#/components/schemas/"
        if not ref.startswith(prefix):
            raise GenerateError(f"$ref {ref!r}: only {prefix}... is supported")
        name = ref[len(prefix):]
        if name not in self.schemas:
            raise GenerateError(f"$ref {ref!r} names no schema")
        return name, self.schemas[name]

    def py(self, s: Any, mode: str, seen: Tuple[str, ...] = ()) -> str:
        """The annotation for a schema; ``mode`` ``in`` (what the caller sends) or ``out`` (what comes back)."""
        if s is None or s is True or s is False or s == {}:
            return "Any"
        if not isinstance(s, dict):
            return "Any"
        if "$ref" in s:
            name, target = self.ref(s["$ref"])
            kind = self.classes.get(name)
            if kind == "model" or kind == "enum":
                if kind == "model" and mode == "in":
                    return f"Union[models.{name}, Dict[str, Any]]"
                return f"models.{name}"
            if name in seen:
                return "Any"
            return self.py(target, mode, seen + (name,))
        if "const" in s:
            return f"Literal[{json_literal(s['const'])}]"
        if "enum" in s:
            values = [v for v in s["enum"] if v is not None]
            lits = [json_literal(v) for v in values if isinstance(v, (str, int, bool))]
            t = f"Literal[{', '.join(lits)}]" if lits and len(lits) == len(values) else "Any"
            return union([t, "None"]) if None in s["enum"] else t
        for key in ("oneOf", "anyOf"):
            if isinstance(s.get(key), list):
                return union(self.py(x, mode, seen) for x in s[key])
        if isinstance(s.get("allOf"), list) and len(s["allOf"]) == 1:
            return self.py(s["allOf"][0], mode, seen)
        t = s.get("type")
        if isinstance(t, list):
            return union(self.py({**s, "type": x}, mode, seen) for x in t)
        if t == "null":
            return "None"
        if t == "string":
            fmt = s.get("format")
            if mode == "in" and fmt == "date-time":
                return "Union[datetime, str]"
            if mode == "in" and fmt == "date":
                return "Union[date, str]"
            return "str"
        if t == "integer":
            return "int"
        if t == "number":
            return "float"
        if t == "boolean":
            return "bool"
        if t == "array":
            return f"List[{self.py(s.get('items'), mode, seen)}]"
        if t == "object" or "properties" in s or "additionalProperties" in s:
            ap = s.get("additionalProperties")
            if isinstance(ap, dict) and ap and not s.get("properties"):
                return f"Dict[str, {self.py(ap, mode, seen)}]"
            return "Dict[str, Any]"
        return "Any"

    def body_model(self, schema: Any) -> Optional[Tuple[str, Dict[str, Any]]]:
        """(class name, schema) when the body is a model whose fields become keyword arguments."""
        if isinstance(schema, dict) and "$ref" in schema:
            name, target = self.ref(schema["$ref"])
            if self.classes.get(name) == "model" and worthy(target):
                return name, target
        return None


def json_literal(v: Any) -> str:
    """A Python literal for a JSON scalar (strings in double quotes)."""
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def union(items: Iterable[str]) -> str:
    flat: List[str] = []
    for t in items:
        parts = split_union(t)
        for p in parts:
            if p not in flat:
                flat.append(p)
    if "Any" in flat:
        return "Any"
    optional = "None" in flat
    rest = [t for t in flat if t != "None"]
    if not rest:
        return "None"
    inner = rest[0] if len(rest) == 1 else f"Union[{', '.join(rest)}]"
    return f"Optional[{inner}]" if optional else inner


def split_union(t: str) -> List[str]:
    """The members of a ``Union[...]`` / ``Optional[...]`` annotation string (else ``[t]``)."""
    for head, extra in (("Union[", []), ("Optional[", ["None"])):
        if t.startswith(head) and t.endswith("]"):
            inner = t[len(head):-1]
            parts, depth, cur = [], 0, ""
            for ch in inner:
                if ch == "[":
                    depth += 1
                elif ch == "]":
                    depth -= 1
                if ch == "," and depth == 0:
                    parts.append(cur.strip())
                    cur = ""
                else:
                    cur += ch
            parts.append(cur.strip())
            out: List[str] = []
            for p in parts:
                out.extend(split_union(p))
            return out + extra
    return [t]


def docstring(lines: List[str], indent: str) -> List[str]:
    text: List[str] = []
    for line in lines:
        line = line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        if not line:
            text.append("")
            continue
        text.extend(textwrap.wrap(line, width=96 - len(indent), break_long_words=False, break_on_hyphens=False))
    if text and text[-1].endswith('"'):
        text[-1] += " "
    out = [f'{indent}"""{text[0]}' if text else f'{indent}"""']
    out.extend(f"{indent}{t}" if t else "" for t in text[1:])
    out.append(f'{indent}"""')
    if len(text) == 1:
        return [f'{indent}"""{text[0]}"""']
    return out


def emit_method(o: Operation, types: Types, is_async: bool) -> List[str]:
    used: Set[str] = {"self"}

    def take(name: str) -> str:
        while name in used:
            name += "_"
        used.add(name)
        return name

    path_params = []
    for seg in o.path.split("/"):
        if is_param(seg):
            pname = seg[1:-1]
            p = next((x for x in o.params if x.location == "path" and x.name == pname), None)
            if p is None:
                p = Param(pname, "path", True, {"type": "string"}, "")
            p.py = take(p.py)
            path_params.append(p)
    workspace = next((p for p in o.params if p.location == "query" and p.name == "workspace"), None)
    queries = [p for p in o.params if p.location == "query" and p is not workspace]
    for p in queries:
        p.py = take(p.py)
    if workspace is not None:
        used.add("workspace")

    kw_required: List[str] = []
    kw_optional: List[str] = []
    for p in queries:
        t = types.py(p.schema, "in")
        if p.required:
            kw_required.append(f"{p.py}: {t}")
        else:
            kw_optional.append(f"{p.py}: {union([t, 'None'])} = None")
    body_expr: Optional[str] = None
    fields: List[Tuple[str, str]] = []
    bm = types.body_model(o.body_schema)
    if bm is not None:
        cls, schema = bm
        required = set(schema.get("required", []) or [])
        for prop in sorted(schema["properties"], key=lambda k: (k not in required, list(schema["properties"]).index(k))):
            py = identifier(prop)
            if py in used or py == "workspace":
                py = take(py + "_body")
            else:
                used.add(py)
            t = types.py(schema["properties"][prop], "in")
            if prop in required:
                kw_required.append(f"{py}: {t}")
            else:
                kw_optional.append(f"{py}: {union([t, 'None'])} = None")
            fields.append((prop, py))
        body_expr = "_body({" + ", ".join(f"{json.dumps(w)}: {py}" for w, py in fields) + "})"
    elif o.body_schema is not None or o.body_required:
        name = take("body")
        t = types.py(o.body_schema, "in")
        if o.body_required:
            kw_required.append(f"{name}: {t}")
            body_expr = name
        else:
            kw_optional.append(f"{name}: {union([t, 'None'])} = None")
            body_expr = f"_NO_BODY if {name} is None else {name}"
    if workspace is not None:
        kw_optional.append("workspace: Optional[str] = None")

    rets = []
    for code, media, schema in o.responses:
        if media is None:
            # 204 has no body; another status without a declared one may still send one.
            rets.append("None" if code == 204 else "Any")
        elif "json" in media:
            rets.append(types.py(schema, "out"))
        else:
            rets.append("str")
    ret = union(rets) if rets else "Any"

    args = ["self"] + [f"{p.py}: {types.py(p.schema, 'in')}" for p in path_params]
    kws = kw_required + kw_optional
    if kws:
        args.append("*")
        args.extend(kws)
    prefix = "async def" if is_async else "def"
    lines = [f"    {prefix} {o.name}("]
    lines.extend(f"        {a}," for a in args)
    lines.append(f"    ) -> {ret}:")
    summary = (o.op.get("summary") or "").strip()
    description = (o.op.get("description") or "").strip()
    doc = [summary or f"{o.method} {o.path}", "", f"``{o.method} {o.path}``" + (f". {description}" if description else "")]
    lines.extend(docstring(doc, "        "))
    path_expr = o.path
    for p in path_params:
        path_expr = path_expr.replace("{" + p.name + "}", "{_p(" + p.py + ")}")
    path_lit = ("f" if path_params else "") + json.dumps(path_expr)
    call = "await self._call(" if is_async else "self._call("
    lines.append(f"        return {call}")
    lines.append(f'            "{o.method}",')
    lines.append(f"            {path_lit},")
    qs = [f"{json.dumps(p.name)}: {p.py}" for p in queries]
    if workspace is not None:
        qs.append('"workspace": workspace')
    if qs:
        lines.append("            query={" + ", ".join(qs) + "},")
    if body_expr is not None:
        lines.append(f"            body={body_expr},")
    if ret != "Any":
        lines.append(f"            response={ret},")
    if workspace is not None:
        lines.append("            workspace_param=True,")
    lines.append("        )")
    return lines


def emit_operations(doc: Dict[str, Any], models_doc: Dict[str, Any], ops: List[Operation], classes: Dict[str, str]) -> str:
    types = Types(models_doc["components"]["schemas"], classes)
    for name in models_doc["components"]["schemas"]:
        if name not in classes:
            raise GenerateError(
                f"datamodel-codegen made no class named {name!r} for the schema of that name; "
                "rename the schema in the document"
            )
    groups: Dict[str, List[Operation]] = {}
    for o in ops:
        groups.setdefault(o.group, []).append(o)
    order = (["core"] if "core" in groups else []) + sorted(g for g in groups if g != "core")
    info = doc.get("info", {})
    out = [
        "# Generated by clients/python/scripts/generate.py from clients/python/openapi.json",
        f"# ({info.get('title', 'learnloop')} API {info.get('version', '?')}, OpenAPI {doc.get('openapi', '?')}).",
        "# Do not edit: run clients/python/scripts/generate.",
        '"""Typed methods for every operation of the learnloop API document, sync and async."""',
        "",
        "from __future__ import annotations",
        "",
        "from datetime import date, datetime  # noqa: F401",
        "from typing import Any, Dict, List, Literal, Optional, Union  # noqa: F401",
        "",
        "from . import models  # noqa: F401",
        "from ._runtime import _NO_BODY, _AsyncOps, _SyncOps  # noqa: F401",
        "from ._runtime import body_fields as _body  # noqa: F401",
        "from ._runtime import path_param as _p  # noqa: F401",
        "",
    ]
    class_names: Dict[str, Tuple[str, str]] = {}
    for g in order:
        base = "CoreApi" if g == "core" else pascal(g) + "Api"
        class_names[g] = (base, "Async" + base)
        for is_async in (False, True):
            cls = ("Async" if is_async else "") + base
            what = "the core routes" if g == "core" else f"the {g} plugin's routes (/api/v1/{g}/...)"
            mode = "asynchronous" if is_async else "synchronous"
            out.append("")
            out.append(f"class {cls}({'_AsyncOps' if is_async else '_SyncOps'}):")
            out.append(f'    """{mode.capitalize()} methods for {what}."""')
            for o in sorted(groups[g], key=lambda x: x.name):
                out.append("")
                out.extend(emit_method(o, types, is_async))
            out.append("")
    out.append("")
    out.append("#: Plugin name -> (sync class, async class), for every plugin the document has.")
    out.append("PLUGINS = {")
    for g in order:
        if g != "core":
            out.append(f"    {json.dumps(g)}: ({class_names[g][0]}, {class_names[g][1]}),")
    out.append("}")
    out.append("")
    out.append("__all__ = [")
    for g in order:
        out.append(f'    "{class_names[g][0]}",')
        out.append(f'    "{class_names[g][1]}",')
    out.append('    "PLUGINS",')
    out.append("]")
    out.append("")
    src = "\n".join(out)
    compile(src, "_operations.py", "exec")
    return src


# ---------------------------------------------------------------- entry points


def untyped_responses(doc: Dict[str, Any]) -> List[str]:
    """The operations whose success answer is no model (``Any`` or a bare ``Dict[str, Any]``)."""
    doc = json.loads(json.dumps(doc, sort_keys=True))
    models_doc, ops = normalize(doc)
    out = []
    for o in ops:
        schemas = [s for _, media, s in o.responses if media and "json" in media]
        if not schemas or all(not worthy(s) and "$ref" not in (s or {}) for s in schemas):
            out.append(f"{o.method} {o.path}")
    return out


def generate(doc: Dict[str, Any]) -> Dict[str, str]:
    """File name -> text of the generated files for this document."""
    # Key order is not part of a JSON document (and the server's depends on
    # its build): generate from the canonical, sorted form.
    doc = json.loads(json.dumps(doc, sort_keys=True))
    models_doc, ops = normalize(doc)
    models_src = run_models(models_doc)
    classes = model_classes(models_src)
    return {"models.py": models_src, "_operations.py": emit_operations(doc, models_doc, ops, classes)}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--document", type=Path, default=DEFAULT_DOCUMENT, help="the OpenAPI document (JSON)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the package directory to write into")
    ap.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = ap.parse_args(argv)
    try:
        doc = json.loads(args.document.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"generate.py: cannot read the document {args.document}: {e}", file=sys.stderr)
        return 1
    try:
        files = generate(doc)
    except GenerateError as e:
        print(f"generate.py: {args.document}: {e}", file=sys.stderr)
        return 1
    stale = []
    for name, text in files.items():
        target = args.out / name
        old = target.read_text(encoding="utf-8") if target.exists() else ""
        if args.check:
            if old != text:
                stale.append(name)
                diff = difflib.unified_diff(old.splitlines(), text.splitlines(), str(target), "generated", lineterm="")
                print("\n".join(list(diff)[:60]), file=sys.stderr)
        elif old != text:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
        else:
            print(f"unchanged {target}")
    if not args.check:
        loose = untyped_responses(doc)
        print(f"{len(loose)} operations answer no typed model (Any or a bare object)"
              + (": " + ", ".join(loose) if loose else ""))
    if stale:
        print(f"generate.py: out of date: {', '.join(stale)} (run clients/python/scripts/generate)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
