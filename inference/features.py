"""What text each model sees, and the sentiment feature vector: one definition for training and serving."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "EVENT_NEGATIVE",
    "EVENT_POSITIVE",
    "LEAD_CHARS",
    "article_text",
    "category_text",
    "event_hits",
    "event_scores",
    "headline_text",
    "sentiment_features",
    "tokens",
    "vader_scores",
]

_LEAD_CHARS = 400
# The one text per article that the shared encoder reads (its token budget is `embeddings.TOKEN_BUDGET`):
# title, standfirst and the opening of the body, cut at a word boundary near LEAD_CHARS characters.
LEAD_CHARS = 600


def article_text(title: str, description: str | None = None, content: str | None = None) -> str:
    """Title + lead: what every head (sentiment, category) and the story clustering read, encoded once."""
    text = title if not description else f"{title}. {description}"
    if content and len(text) < LEAD_CHARS:
        lead = content[: LEAD_CHARS - len(text)]
        if len(lead) < len(content) and " " in lead:
            lead = lead.rsplit(" ", 1)[0]
        text = f"{text} {lead}"
    return text


def headline_text(title: str, description: str | None = None) -> str:
    """Title and standfirst: what a reader's sentiment judgement of a story rests on."""
    return title if not description else f"{title}. {description}"


def category_text(title: str, description: str | None = None, content: str | None = None) -> str:
    """Title, standfirst and the start of the body (topic needs more context than tone)."""
    head = headline_text(title, description)
    if content and len(head) < _LEAD_CHARS:
        head = f"{head} {content[: _LEAD_CHARS - len(head)]}"
    return head


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_scores(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """VADER's neg, neu, pos and compound for each text (a lexicon signal the learned head weighs)."""
    analyzer = _vader()
    rows = [analyzer.polarity_scores(t) for t in texts]
    return np.array([[r["neg"], r["neu"], r["pos"], r["compound"]] for r in rows], dtype=np.float32).reshape(-1, 4)


# A news-event valence lexicon, written by hand from general knowledge of what news reports (not fitted to any
# test sentence): words whose presence makes an item good or bad news for its subject. Review and tweet
# lexicons (VADER) miss these because "shares rise" or "20 dead in blast" carry no opinion words. Entries
# are word stems matched with common English inflections (see `_matches`).
EVENT_POSITIVE = frozenset(
    """
    rise rose risen soar surge jump gain climb rally rebound recover recovery boost boom upturn upbeat
    win won winner victory victorious triumph champion championship title medal gold trophy
    beat beats exceed outperform upgrade record-high high highs growth grow grew grown expand expansion
    profit profitable profits dividend bonus payout windfall
    deal agreement agree accord pact partnership alliance merger
    peace ceasefire truce reconcile reunite reunion
    rescue rescued save saved survive survivor survived safe safely freed release released acquit acquitted
    cure cured breakthrough treatment vaccine heal healed
    approve approval approved award awarded honour honor honoured honored praise praised celebrate celebration
    hero heroic success successful succeed achieve achievement milestone best improve improvement improved
    strong stronger strengthen robust thrive thriving hire hiring invest investment fund funding donate
    donation help helped aid support supported welcome welcomed hope hopeful optimism optimistic bullish
    restore restored reopen reopened launch unveil innovate innovation wed wedding engaged birth newborn
    protect protected benefit benefits boosted recovering
    """.split()
)
EVENT_NEGATIVE = frozenset(
    """
    fall fell fallen drop dropped plunge plummet slump tumble sink sank slide slid decline dip slip
    loss losses lose lost losing deficit shortfall miss missed downgrade warn warning cut cuts slash
    layoff layoffs redundancy redundancies jobless unemployment recession slowdown stagnation inflation
    crash collapse bankrupt bankruptcy insolvency default debt bailout crisis turmoil chaos
    kill killed killing dead death deaths die died dying murder murdered homicide shot shooting gunman
    gunmen stab stabbed attack attacked bomb bombing blast explosion explode terror terrorist terrorism
    war fighting clash clashes violence violent militant insurgent airstrike strike strikes riot riots
    injure injured injury wounded hurt victim victims casualty casualties massacre genocide
    fire blaze flood flooding earthquake quake storm hurricane tornado typhoon tsunami drought famine
    disaster tragedy tragic accident derail wreck sinking
    arrest arrested charged charge jailed jail prison imprisoned sentenced convicted guilty accused
    accuse allegation alleged fraud scam scandal corruption bribery bribe probe indict indicted
    sue sued lawsuit fine fined penalty sanction sanctions ban banned recall recalled boycott
    protest protesters threat threaten threatens fear fears feared worry worries concern concerns risk
    danger dangerous fail failed failure failing reject rejected defeat defeated resign resigned
    quit sacked fired oust ousted suspend suspended scrap scrapped delay delayed cancel cancelled canceled
    shortage outbreak epidemic pandemic virus infection disease cancer sick illness overdose
    hack hacked hackers breach leak leaked abuse abused harassment assault rape kidnap kidnapped hostage
    missing poverty hunger homeless pollution toxic contaminated poison poisoned closure close closed
    shut shutdown evacuate evacuated emergency condemn condemned criticise criticised criticize criticized
    slam slammed blame blamed row feud dispute worst weak weaker weakness struggle struggling trouble
    troubled problem problems damage damaged destroy destroyed refugees dispute controversy backlash
    """.split()
)
# Words that turn the valence of the next few words around ("no deal", "fails to win", "not guilty").
_NEGATORS = frozenset({"no", "not", "never", "without", "fails", "fail", "failed", "denies", "denied", "nor", "n't"})
_SUFFIXES = ("", "s", "es", "ed", "d", "ing", "er", "ers")
_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*|n't")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (hyphenated words kept whole, "n't" split off)."""
    return _TOKEN.findall(text.lower().replace("’", "'"))


def _stem_in(word: str, lexicon: frozenset[str]) -> bool:
    if word in lexicon:
        return True
    for suffix in _SUFFIXES[1:]:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and word[: -len(suffix)] in lexicon:
            return True
    return False


def event_hits(text: str) -> tuple[int, int]:
    """(positive, negative) news-event words in a text, a negator within the three words before flipping one."""
    words = tokens(text)
    pos = neg = 0
    for i, word in enumerate(words):
        sign = 1 if _stem_in(word, EVENT_POSITIVE) else -1 if _stem_in(word, EVENT_NEGATIVE) else 0
        if not sign:
            continue
        if any(w in _NEGATORS for w in words[max(0, i - 3) : i]):
            sign = -sign
        if sign > 0:
            pos += 1
        else:
            neg += 1
    return pos, neg


def event_scores(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Per text: positive hits, negative hits (both squashed by log1p) and tanh of their difference."""
    hits = np.array([event_hits(t) for t in texts], dtype=np.float32).reshape(-1, 2)
    return np.hstack([np.log1p(hits), np.tanh(hits[:, :1] - hits[:, 1:])]).astype(np.float32)


def sentiment_features(embeddings: npt.NDArray[np.float32], texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """English sentiment features: the sentence embedding, VADER's four scores and the news-event lexicon's three."""
    return np.hstack([embeddings, vader_scores(texts), event_scores(texts)]).astype(np.float32)
