"""Export the consumer's wire contract and generate the dashboard's TypeScript types from it.

The dashboard's types are generated, never written by hand (issue 19), so that a change to a Pydantic model
or a route is a change in the TypeScript the dashboard compiles against. Two documents are exported and
each is turned into a module by `openapi-typescript` (pinned in frontend/package.json):

- `consumer.openapi.json` -> `consumer.ts`: the consumer's OpenAPI document (REST routes and their models).
  It is static: building the app opens no connection (Kafka and Redis are opened in its lifespan).
- `messages.openapi.json` -> `messages.ts`: the JSON Schemas of the WebSocket messages (`ServerMessage`,
  what the server sends, as serialised; `ClientMessage`, what it accepts, as validated) from
  `common.messages`, wrapped as the components of an OpenAPI document so that one tool reads both.
  Skipped, with a note, while `common.messages` does not exist.

Usage: `.venv/bin/python scripts/export_contract.py [--out DIR]` (default: frontend/src/api/generated);
`make contract` writes the committed files, `make contract-check` regenerates into a temporary folder and
fails when they differ.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

__all__ = ["consumer_openapi", "export", "main", "messages_openapi"]

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "frontend"
DEFAULT_OUT = FRONTEND / "src" / "api" / "generated"
GENERATOR = FRONTEND / "node_modules" / ".bin" / "openapi-typescript"
# Where the generated OpenAPI components live: pydantic writes its `$ref`s straight to this place.
REF_TEMPLATE = "#/components/schemas/{model}"


def consumer_openapi() -> dict[str, Any]:
    """The consumer's OpenAPI document, as FastAPI serves it at /openapi.json."""
    from prometheus_client import CollectorRegistry

    from consumer.main import create_app

    # A registry of its own: the module may already have built an app on the global one.
    document: dict[str, Any] = create_app(registry=CollectorRegistry()).openapi()
    return document


class _SentFields(GenerateJsonSchema):
    """In what the server sends, a field is required exactly when it is always there.

    Frames leave a message's optional fields out when they are None (common.messages `_Message.frame`), so
    a field whose default is None may be absent; every other field is always written, defaults included.
    (Articles inside keep their nulls: for them "may be absent" is merely cautious.) Pydantic's serialization
    schema marks no defaulted field required; openapi-typescript's `--default-non-nullable` would make every
    defaulted one required (`cursor: string | null` on a frame that leaves it out). This rule is right for
    both, and the module is generated with `--default-non-nullable false`, so `required` alone decides.
    What the client sends (validation mode) keeps pydantic's rule: defaulted fields are optional.
    """

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        schema = field["schema"]
        if self.mode != "serialization" or field["type"] == "typed-dict-field" or schema["type"] != "default":
            return super().field_is_required(field, total)
        return not ("default" in schema and schema["default"] is None)


def messages_openapi() -> dict[str, Any] | None:
    """The WebSocket messages' JSON Schemas as OpenAPI components, or None while common.messages is absent."""
    if importlib.util.find_spec("common.messages") is None:
        return None
    from common import messages

    # One call for both unions, so the models they share (AnalyzedArticle...) are declared once. What the
    # server sends is described as it is serialised, what it accepts as it is validated.
    keys, definitions = TypeAdapter.json_schemas(
        [
            ("ServerMessage", "serialization", TypeAdapter(messages.ServerMessage)),
            ("ClientMessage", "validation", TypeAdapter(messages.ClientMessage)),
        ],
        ref_template=REF_TEMPLATE,
        schema_generator=_SentFields,
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    for (name, _mode), schema in keys.items():
        schemas[str(name)] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "News consumer WebSocket messages",
            "version": "0.1.0",
            "description": "Messages on the consumer's `/ws` (common/messages.py); no paths, only components.",
        },
        "paths": {},
        "components": {"schemas": schemas},
    }


# openapi-typescript's options per document. The consumer's document is FastAPI's: a defaulted field of a
# response is always filled in, which is the tool's default reading. The messages' document says in
# `required` which fields are always there (see _SentFields).
_OPTIONS = {"consumer": [], "messages": ["--default-non-nullable", "false"]}


def _generate(document: dict[str, Any], name: str, out: Path) -> None:
    source = out / f"{name}.openapi.json"
    source.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    result = subprocess.run(
        [str(GENERATOR), str(source), "--output", str(out / f"{name}.ts"), *_OPTIONS[name]],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"openapi-typescript failed on {source.name}:\n{result.stdout}{result.stderr}")


def export(out: Path) -> list[str]:
    """Write every document and module into `out` (created if needed); returns the names of the documents."""
    if not GENERATOR.exists():
        raise SystemExit(f"{GENERATOR.relative_to(ROOT)} is missing: run `make frontend-install` first")
    out.mkdir(parents=True, exist_ok=True)
    documents = {"consumer": consumer_openapi(), "messages": messages_openapi()}
    written = []
    for name, document in documents.items():
        if document is None:
            print(f"export_contract: common.messages not found; {name}.ts not generated", file=sys.stderr)
            continue
        # Through a temporary folder, so a failed run leaves no half-written pair behind.
        with tempfile.TemporaryDirectory(prefix="contract-") as tmp:
            _generate(document, name, Path(tmp))
            for suffix in (".openapi.json", ".ts"):
                (out / f"{name}{suffix}").write_bytes((Path(tmp) / f"{name}{suffix}").read_bytes())
        written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the generated files")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    for name in export(out):
        print(f"export_contract: {name}.openapi.json and {name}.ts in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
