"""MkDocs hooks (mkdocs.yml `hooks:`): pages that show files kept elsewhere in the repository.

- `<!-- openapi: schemas/openapi.json -->` becomes that OpenAPI 3.1 document as Markdown:
  each operation (method, path, login, parameters, request body, answers) and each schema
  it names, linked. No JavaScript renderer and nothing fetched: the page is plain HTML.
- `<!-- include: bench/README.md -->` becomes that file, its headings one level down, so
  the benchmark's method and figures stay beside the harness and appear in the site too.

Paths are relative to the repository root (mkdocs.yml's folder).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"<!--\s*(openapi|include):\s*(\S+)\s*-->")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_SECURITY = {
    "basic": "HTTP Basic",
    "bearer": "Bearer `<username>.<secret>`",
    "mutualTLS": "a client certificate",
    "session": "a dashboard session cookie",
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each marker with what it names."""
    root = Path(config["config_file_path"]).parent

    def expand(match: re.Match[str]) -> str:
        kind, name = match.groups()
        path = root / name
        if kind == "openapi":
            return openapi_markdown(json.loads(path.read_text(encoding="utf-8")), name)
        return _demoted(path.read_text(encoding="utf-8"))

    return _MARKER.sub(expand, markdown)


def _demoted(text: str) -> str:
    """Markdown with every heading one level deeper (outside fenced code)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if not fenced and line.startswith("#") else line)
    return "\n".join(out) + "\n"


def operation_anchor(method: str, path: str) -> str:
    """The id of an operation's heading: `get-api-v1-streams-collection`."""
    return "-".join([method.lower(), *re.findall(r"[a-z0-9]+", path.lower())])


def _schema_anchor(name: str) -> str:
    return "schema-" + name.lower()


def _cell(text: str) -> str:
    """Text fit for one table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _type(schema: Mapping[str, Any]) -> str:
    """A schema's type in a few words, named schemas linked."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_schema_anchor(name)})"
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "allOf" in schema:
        return " and ".join(_type(s) for s in schema["allOf"])
    kind = schema.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    words = []
    for k in kinds:
        if k == "array":
            words.append("array of " + _type(schema.get("items", {})))
        elif k == "object" and isinstance(schema.get("additionalProperties"), Mapping):
            words.append("map of " + _type(schema["additionalProperties"]))
        else:
            words.append(k)
    text = " or ".join(words)
    if "format" in schema:
        text += f" ({schema['format']})"
    return text


def _login(security: list[Mapping[str, Any]] | None) -> str:
    if not security:
        return "none"
    ways = [_SECURITY.get(name, name) for need in security for name in need]
    if not ways:
        return "none"
    text = ", ".join(ways)
    return f"optional: {text}" if any(not need for need in security) else text


def _properties(schema: Mapping[str, Any]) -> Iterator[str]:
    props = schema.get("properties", {})
    if not props:
        return
    required = set(schema.get("required", []))
    yield "| field | type | required | description |"
    yield "|---|---|---|---|"
    for name, prop in props.items():
        yes = "yes" if name in required else ""
        yield f"| `{name}` | {_type(prop)} | {yes} | {_cell(prop.get('description', ''))} |"


def _operation(
    doc: Mapping[str, Any], method: str, path: str, op: Mapping[str, Any]
) -> Iterator[str]:
    yield f"### `{method.upper()} {path}` {{#{operation_anchor(method, path)}}}"
    yield ""
    yield f"**{op.get('summary', '')}**"
    yield ""
    if op.get("description"):
        yield op["description"]
        yield ""
    yield f"Login: {_login(op.get('security'))}."
    yield ""
    params = op.get("parameters", [])
    if params:
        yield "| parameter | in | required | description |"
        yield "|---|---|---|---|"
        for p in params:
            yes = "yes" if p.get("required") else ""
            yield f"| `{p['name']}` | {p['in']} | {yes} | {_cell(p.get('description', ''))} |"
        yield ""
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            yield f"Request body, `{media}`:"
            yield ""
            yield from _properties(content.get("schema", {}))
            yield ""
    yield "| answer | means | body |"
    yield "|---|---|---|"
    for status, answer in op.get("responses", {}).items():
        answer = _resolve(doc, answer)
        bodies = [
            f"`{media}` {_type(content.get('schema', {}))}"
            for media, content in answer.get("content", {}).items()
        ]
        headers = [h for h in answer.get("headers", {}) if h != "X-Request-ID"]
        means = answer.get("description", "")
        if headers:
            means += " (headers: " + ", ".join(f"`{h}`" for h in headers) + ")"
        yield f"| {status} | {_cell(means)} | {'; '.join(bodies)} |"
    yield ""


def _resolve(doc: Mapping[str, Any], item: Mapping[str, Any]) -> Mapping[str, Any]:
    """`item`, or what its `#/components/...` reference names in `doc`."""
    ref = item.get("$ref")
    if not ref:
        return item
    found: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return found


def openapi_markdown(doc: Mapping[str, Any], source: str) -> str:
    """The document as Markdown: its description, each operation, each named schema."""
    info = doc.get("info", {})
    lines = [
        f"*Rendered from `{source}` (OpenAPI {doc.get('openapi')}, "
        f"{info.get('title')} {info.get('version')}).*",
        "",
        info.get("description", ""),
        "",
        "## Endpoints",
        "",
        "| method and path | what |",
        "|---|---|",
    ]
    operations = [
        (method, path, op)
        for path, item in doc.get("paths", {}).items()
        for method, op in item.items()
        if method in _METHODS
    ]
    for method, path, op in operations:
        anchor = operation_anchor(method, path)
        lines.append(f"| [`{method.upper()} {path}`](#{anchor}) | {_cell(op.get('summary', ''))} |")
    lines.append("")
    for method, path, op in operations:
        lines.extend(_operation(doc, method, path, op))
    lines += ["## Schemas", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        lines.append(f"### {name} {{#{_schema_anchor(name)}}}")
        lines.append("")
        if schema.get("description"):
            lines += [schema["description"], ""]
        table = list(_properties(schema))
        lines += [*table, ""] if table else [f"Type: {_type(schema)}.", ""]
    return "\n".join(lines)
