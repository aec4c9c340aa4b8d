"""The `news` command without services: argument handling (typer's CliRunner), reading and mapping input rows
with their line numbers, and the clear one-line errors of commands whose server does not answer."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from news_cli.analyze import detect_format, read_rows, to_raw
from news_cli.main import COMMANDS, app, checkout_root
from news_cli.remote import ws_url

runner = CliRunner()

NEWSAPI = {
    "source": {"id": "bbc-news", "name": "BBC News"},
    "author": None,
    "title": "Acme wins contract to build new bridge",
    "description": "The deal is worth 100 million pounds.",
    "url": "https://www.bbc.co.uk/news/business-1?utm_source=x",
    "urlToImage": "https://ichef.bbci.co.uk/news/1024/acme.jpg",
    "publishedAt": "2024-11-26T05:00:00Z",
    "content": "The company said on Monday that it had won the contract [+2829 chars]",
}


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_lists_every_command_in_order() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    listing = result.output[result.output.index("Commands") :]
    positions = [listing.index(f" {name} ") for name in COMMANDS]
    assert positions == sorted(positions)
    assert set(COMMANDS) == {"analyze", "tail", "search", "replay", "export", "eval"}


def test_analyze_refuses_a_missing_file_and_bad_options(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["analyze", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert runner.invoke(app, ["analyze", "x.csv", "--tier", "huge"]).exit_code == 2
    assert runner.invoke(app, ["analyze", "x.csv", "--batch-size", "0"]).exit_code == 2
    assert runner.invoke(app, ["analyze"]).exit_code == 2


def test_export_needs_an_output_and_a_known_format() -> None:
    assert runner.invoke(app, ["export"]).exit_code == 2
    assert runner.invoke(app, ["export", "-o", "x", "-f", "xml"]).exit_code == 2


@pytest.mark.parametrize(
    "argv",
    [["search", "bank"], ["export", "-o", "never-written.jsonl", "--quiet"], ["tail", "--count", "1"]],
)
def test_a_consumer_that_does_not_answer_is_one_clear_line(argv: list[str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_dead_port()}"
    result = runner.invoke(app, [*argv, "--api-url", url], env={"NEWS_TOKEN": ""})
    assert result.exit_code == 1
    assert "no consumer answers at" in result.output and "Traceback" not in result.output
    assert not Path("never-written.jsonl").exists() and not Path("never-written.jsonl.part").exists()


def test_eval_runs_from_the_checkout() -> None:
    root = checkout_root()
    assert root is not None and (root / "training" / "evaluate.py").is_file()


# --- reading and mapping -------------------------------------------------------------------------------


def test_formats_are_told_by_extension_then_content() -> None:
    assert detect_format("a.jsonl", "") == "jsonl"
    assert detect_format("a.CSV", "{") == "csv"
    assert detect_format("urls.txt", "") == "urls"
    assert detect_format(None, '{"title": 1}') == "jsonl"
    assert detect_format(None, "https://example.com/a") == "urls"
    assert detect_format(None, "url,title") == "csv"


def test_a_newsapi_article_is_read_as_it_comes() -> None:
    article = to_raw(NEWSAPI)
    assert article.source == "BBC News"
    assert article.content == "The company said on Monday that it had won the contract"
    assert article.published_at.isoformat() == "2024-11-26T05:00:00+00:00"
    assert "utm_source" not in article.url  # canonical URL, so the id matches the pipeline's


def test_plain_records_body_or_text_and_epoch_dates() -> None:
    article = to_raw({"url": "https://e.com/1", "title": "T", "body": "<p>Body</p>", "published_at": "1700000000"})
    assert article.content == "Body" and article.published_at.year == 2023
    assert to_raw({"url": "https://e.com/1", "headline": "T", "text": "x"}).content == "x"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"title": "no url"}, "missing url/link"),
        ({"url": "https://e.com/1", "title": "   "}, "missing title/headline"),
        ({"url": "https://e.com/1", "title": "t", "published_at": "someday"}, "published_at"),
        ({"url": "ftp://e.com/1", "title": "t"}, "url"),
    ],
)
def test_a_record_that_cannot_be_an_article_says_why(row: dict[str, str], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        to_raw(row)


def test_jsonl_rows_keep_their_line_numbers() -> None:
    text = "\n".join([json.dumps(NEWSAPI), "", "{not json", "[1, 2]", json.dumps({"url": "https://e.com/2"})])
    rows = list(read_rows(io.StringIO(text), "jsonl"))
    assert [r.line for r in rows] == [1, 3, 4, 5]
    assert rows[0].data == NEWSAPI and rows[3].data is not None
    assert rows[1].error is not None and rows[1].error.startswith("not JSON")
    assert rows[2].error == "not a JSON object (a list)"


def test_csv_rows_are_numbered_by_the_line_they_start_on() -> None:
    text = (
        'url,title,content\nhttps://e.com/1,One,"two\nlines"\nhttps://e.com/2,Two,x,extra\n\nhttps://e.com/3,Three,y\n'
    )
    rows = list(read_rows(io.StringIO(text, newline=""), "csv"))
    assert [r.line for r in rows] == [2, 4, 6]
    assert rows[0].data == {"url": "https://e.com/1", "title": "One", "content": "two\nlines"}
    assert rows[1].error == "4 fields where the header has 3"
    assert rows[2].data is not None and rows[2].data["title"] == "Three"


def test_csv_without_a_title_column_is_refused_at_the_header() -> None:
    rows = list(read_rows(io.StringIO("a,b\n1,2\n"), "csv"))
    assert len(rows) == 1 and rows[0].line == 1 and rows[0].error is not None and "no title column" in rows[0].error


def test_a_bare_url_is_rejected_with_the_reason() -> None:
    rows = list(read_rows(io.StringIO("https://e.com/a\nnot a url\n"), "urls"))
    assert [(r.line, r.data, r.error, r.fetch) for r in rows] == [
        (1, {"url": "https://e.com/a"}, None, True),
        (2, None, "not an http(s) URL", False),
    ]


def test_websocket_url_carries_the_filters() -> None:
    assert (
        ws_url("https://news.example/api/", {"language": "en", "source": None, "ticket": "abc"})
        == "wss://news.example/api/ws?language=en&ticket=abc"
    )
