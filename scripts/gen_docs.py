"""Generate the documentation site's reference pages from the code, so they cannot drift from it.

    python scripts/gen_docs.py [--out docs/reference]

Writes (gitignored; `make docs` runs this before `mkdocs build --strict`):
  ../index.md       the site's front page: README.md, its `docs/` links made relative to the site
  configuration.md  every environment variable of every service, walked from the pydantic settings models
                    (`ConsumerSettings`, `ProducerSettings`, ...): name, default, type, the services that read
                    it, and its meaning from docs/settings.yml
  api.md            every HTTP route of every service, from each FastAPI app's own OpenAPI document
  openapi-<service>.json  those documents, for tools

docs/settings.yml holds one meaning per variable. `check_meanings()` (run by this script and by
tests/unit/test_docs_reference.py) fails when a variable of the models has no meaning or a meaning names a variable
that no model has: a new setting cannot go undocumented, nor a removed one stay documented.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["MEANINGS", "check_meanings", "services", "variables", "write"]

MEANINGS = ROOT / "docs" / "settings.yml"


def services() -> dict[str, type[BaseModel]]:
    """Each service's settings model (imported here: the services are installed with this repository)."""
    from consumer.settings import ConsumerSettings
    from indexer.settings import IndexerSettings
    from inference.settings import InferenceSettings
    from producer.settings import ProducerSettings
    from stream_worker.settings import WorkerSettings

    return {
        "producer": ProducerSettings,
        "worker": WorkerSettings,
        "inference": InferenceSettings,
        "consumer": ConsumerSettings,
        "indexer": IndexerSettings,
    }


def _model_of(annotation: Any) -> type[BaseModel] | None:
    # A nested section (`kafka: KafkaSettings`) is walked; a list or dict of models is one variable (JSON).
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1 and all(a is type(None) or a in models for a in args):
            return models[0]
    return None


def _walk(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    for name, field in model.model_fields.items():
        env = f"{prefix}{(field.alias or name)}".upper()
        sub = _model_of(field.annotation)
        if sub is not None:
            yield from _walk(sub, f"{env}__")
        else:
            yield env, field


def _type(annotation: Any) -> str:
    text = repr(annotation) if not isinstance(annotation, type) else annotation.__name__
    for noise in ("typing.", "pydantic.types.", "common.settings.", "<class '", "'>"):
        text = text.replace(noise, "")
    return text


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "(none)"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=str)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def variables() -> dict[str, dict[str, Any]]:
    """Every variable: default, type and the services that read it (in pipeline order)."""
    out: dict[str, dict[str, Any]] = {}
    for service, model in services().items():
        for env, field in _walk(model):
            row = out.setdefault(env, {"default": _default(field), "type": _type(field.annotation), "services": []})
            row["services"].append(service)
    return out


def meanings() -> dict[str, str]:
    data = yaml.safe_load(MEANINGS.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise SystemExit(f"{MEANINGS}: expected a mapping of variable -> meaning")
    return {str(k): str(v) for k, v in data.items()}


def check_meanings() -> list[str]:
    """Problems: variables without a meaning, meanings of no variable (empty when the reference is complete)."""
    known, documented = variables(), meanings()
    problems = [f"{env}: no meaning in docs/settings.yml" for env in known if not documented.get(env, "").strip()]
    problems += [f"{env}: in docs/settings.yml but no service reads it" for env in documented if env not in known]
    return problems


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def configuration_page() -> str:
    rows, documented = variables(), meanings()
    lines = [
        "# Configuration reference",
        "",
        "Generated by `scripts/gen_docs.py` from the services' pydantic settings models (`make docs`); the meanings",
        "come from `docs/settings.yml`, and a test fails when a variable has none. Every service reads its settings",
        "from the environment (or a `.env` file); sections nest with `__` (`KAFKA__BOOTSTRAP_SERVERS`). Lists and",
        "objects are JSON. Secrets (`SecretStr`) are refused when they hold a placeholder outside `local`/`test`.",
        "",
    ]
    sections: dict[str, list[str]] = {}
    for env in rows:
        head = env.split("__", 1)[0] if "__" in env else "(top level)"
        sections.setdefault(head, []).append(env)
    for head, names in sections.items():
        lines += [f"## `{head}`" if head != "(top level)" else "## Top level", ""]
        lines += ["| variable | default | type | read by | meaning |", "|---|---|---|---|---|"]
        for env in names:
            row = rows[env]
            lines.append(
                f"| `{env}` | `{_cell(row['default'])}` | `{_cell(row['type'])}` | {', '.join(row['services'])} | "
                f"{_cell(documented.get(env, ''))} |"
            )
        lines.append("")
    return "\n".join(lines)


def _apps() -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from consumer.main import create_app as consumer_app
    from indexer.main import create_app as indexer_app
    from inference.main import create_app as inference_app
    from producer.main import create_app as producer_app

    # A registry each, so building four apps in one process does not register a metric twice.
    return {
        "producer (8001)": producer_app(registry=CollectorRegistry()),
        "inference (8000)": inference_app(registry=CollectorRegistry()),
        "consumer (8002)": consumer_app(registry=CollectorRegistry()),
        "indexer (8003)": indexer_app(registry=CollectorRegistry()),
    }


def api_page(out: Path) -> str:
    lines = [
        "# HTTP API reference",
        "",
        "Generated by `scripts/gen_docs.py` from each service's own OpenAPI document (`make docs`), so it lists",
        "exactly what the code serves. Each document is also published beside this page as",
        "`openapi-<service>.json`; every service serves its own at `/openapi.json` and an explorer at `/docs`.",
        "",
    ]
    for title, app in _apps().items():
        spec = app.openapi()
        name = title.split()[0]
        (out / f"openapi-{name}.json").write_text(json.dumps(spec, indent=1, sort_keys=True), encoding="utf-8")
        lines += [f"## {title}", "", f"OpenAPI document: [openapi-{name}.json](openapi-{name}.json)", ""]
        lines += ["| method | path | what it does | parameters | answers |", "|---|---|---|---|---|"]
        for path, operations in sorted(spec.get("paths", {}).items()):
            for method, op in operations.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                summary = op.get("summary") or ""
                doc = (op.get("description") or "").strip().split("\n\n")[0]
                what = f"**{summary}**. {doc}" if doc else summary
                params = ", ".join(
                    f"`{p['name']}`" + ("" if p.get("in") == "query" else f" ({p.get('in')})")
                    for p in op.get("parameters", [])
                )
                if "requestBody" in op:
                    params = (params + ", " if params else "") + "JSON body"
                answers = ", ".join(sorted(op.get("responses", {})))
                lines.append(f"| {method.upper()} | `{path}` | {_cell(what)} | {_cell(params)} | {answers} |")
        lines.append("")
    return "\n".join(lines)


def index_page() -> str:
    """README.md as the site's front page (one text, two places): `docs/x.md` links become `x.md`, and the
    reference pages it names in prose become links."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    text = re.sub(r"\]\(docs/", "](", text).replace("[docs/settings.yml](settings.yml)", "`docs/settings.yml`")
    return text.replace(
        "`docs/reference/configuration.md`", "[the configuration reference](reference/configuration.md)"
    )


def write(out: Path) -> None:
    problems = check_meanings()
    if problems:
        raise SystemExit("docs/settings.yml is out of step with the settings models:\n  " + "\n  ".join(problems))
    out.mkdir(parents=True, exist_ok=True)
    (out.parent / "index.md").write_text(index_page(), encoding="utf-8")
    (out / "configuration.md").write_text(configuration_page(), encoding="utf-8")
    (out / "api.md").write_text(api_page(out), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reference")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # building the apps logs their start-up warnings (open access): not news here
    write(args.out)
    print(f"wrote {args.out}/configuration.md, api.md and the OpenAPI documents")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
