"""inference.summary: extractive summaries in original order, bounded, None when nothing beyond the title."""

from __future__ import annotations

from inference.summary import MAX_CHARS, sentences, summarize

TITLE = "Senate passes bill to fund government"
BODY = (
    "The Senate passed a bill on Friday to fund the government through March, averting a shutdown. "
    "The vote was 65-35. Weather in Washington was sunny all week. Mr. Smith, a tourist, enjoyed the parks. "
    "The bill now goes to the House, where passage of the government funding is expected."
)


def test_lead_first_and_original_order() -> None:
    out = summarize("en", TITLE, BODY)
    assert out is not None
    assert out.startswith("The Senate passed a bill on Friday")
    picked = sentences("en", out)
    positions = [BODY.index(s) for s in picked]
    assert positions == sorted(positions)
    assert 1 <= len(picked) <= 3
    assert "House" in out  # shares words with the title
    assert "sunny" not in out  # shares nothing with the title or lead
    assert len(out) <= MAX_CHARS


def test_max_sentences_respected() -> None:
    out = summarize("en", TITLE, BODY, max_sentences=1)
    assert out is not None and len(sentences("en", out)) == 1


def test_none_for_a_one_line_text() -> None:
    assert summarize("en", TITLE, TITLE) is None
    assert summarize("en", TITLE, TITLE + ".") is None
    assert summarize("en", TITLE, "Short.") is None


def test_abbreviations_do_not_split() -> None:
    assert sentences("en", "Mr. Smith went to the U.S. Senate. He left.") == [
        "Mr. Smith went to the U.S. Senate.",
        "He left.",
    ]


def test_korean_sentences_and_summary() -> None:
    text = (
        "정부가 오늘 새 정책을 발표했다. 시민들은 새 정책을 환영했어요. 날씨는 맑았다. "
        "그러나 야당은 정부 정책에 반대했다."
    )
    assert sentences("ko", text) == [
        "정부가 오늘 새 정책을 발표했다.",
        "시민들은 새 정책을 환영했어요.",
        "날씨는 맑았다.",
        "그러나 야당은 정부 정책에 반대했다.",
    ]
    out = summarize("ko", "정부 새 정책 발표", text)
    assert out is not None
    assert out.startswith("정부가 오늘 새 정책을 발표했다.")
    assert "날씨" not in out


def test_deterministic() -> None:
    first = summarize("en", TITLE, BODY)
    assert all(summarize("en", TITLE, BODY) == first for _ in range(5))
