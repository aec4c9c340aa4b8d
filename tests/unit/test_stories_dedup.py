"""Near-duplicates: copies and light rewrites are linked to the first-seen article; other reports are not."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from harness.infra import ROOT
from stream_worker.stories.dedup import NearDuplicates, Signature, article_text, shingles, signature

LEAD = (
    "Philippine President Rodrigo Duterte's campaign to bring back the death penalty for drug-related crimes has "
    "cleared a major hurdle, with supporters backing it in congress but critics denouncing the plans as inhumane. "
    "The death penalty bill, along with a proposal to lower the age of criminal responsibility, is part of a "
    "legislative agenda that Duterte's allies in the House of Representatives have pushed through quickly."
)
ORIGINAL = article_text("Rodrigo Duterte's death penalty campaign clears hurdle", None, LEAD)
REWRITE = article_text("Philippines moves towards re-introducing death penalty", None, LEAD.replace("quickly", "fast"))
SAME_EVENT = article_text(
    "Philippine lawmakers vote to restore capital punishment",
    None,
    "Lawmakers in Manila approved on second reading a measure that would reintroduce executions for drug "
    "offences, a priority of the president, as rights groups and the Catholic church protested outside the "
    "chamber and opposition members walked out before the vote was counted late on Wednesday night.",
)
UNRELATED = article_text(
    "Norway named the world's happiest country",
    None,
    "Norway has overtaken Denmark as the happiest country in the world, according to an annual report that ranks "
    "countries by income, healthy life expectancy, social support, freedom, trust and generosity.",
)


def _index(*texts: str) -> tuple[NearDuplicates, list[str | None]]:
    index = NearDuplicates()
    return index, [index.check_and_add(f"a{i}", signature(t, "en")) for i, t in enumerate(texts)]


def test_copy_and_light_rewrite_are_linked_to_the_original() -> None:
    _, answers = _index(ORIGINAL, ORIGINAL, REWRITE)
    assert answers == [None, "a0", "a0"]


def test_unrelated_and_same_event_other_report_are_not_duplicates() -> None:
    _, answers = _index(ORIGINAL, SAME_EVENT, UNRELATED)
    assert answers == [None, None, None]


def test_a_copy_of_a_copy_links_to_the_first_seen_article() -> None:
    # b is close to a, c is close to b but not to a: c still links to a, the first seen.
    words = f"{LEAD} {SAME_EVENT} {UNRELATED}".split()
    a, b, c = (" ".join(words[start : start + 60]) for start in (0, 20, 40))
    index = NearDuplicates()
    sig_a, sig_b, sig_c = (signature(t, "en") for t in (a, b, c))
    assert sig_a.jaccard(sig_c) < index.threshold <= sig_b.jaccard(sig_c)
    assert index.check_and_add("a", sig_a) is None
    assert index.check_and_add("b", sig_b) == "a"
    assert index.check_and_add("c", sig_c) == "a"


def test_redelivery_is_idempotent_and_removed_articles_are_not_found() -> None:
    index, _ = _index(ORIGINAL)
    assert index.check_and_add("a0", signature(ORIGINAL, "en")) is None  # the same id again: unchanged answer
    assert len(index) == 1
    index.remove("a0")
    assert index.check_and_add("later", signature(ORIGINAL, "en")) is None  # aged out: not found (documented)


def test_korean_uses_character_shingles_and_a_changed_particle_is_a_duplicate() -> None:
    ko = "정부는 오늘 부동산 대책을 발표했다. 서울 아파트 가격이 크게 오르자 대출 규제를 강화하고 공급을 늘리기로 했다."
    changed = ko.replace("정부는", "정부가")  # topic particle -> subject particle
    other = "한국은행은 기준금리를 동결했다. 물가 상승률이 둔화되고 경기 회복이 더딘 점을 고려한 결정이라고 밝혔다."
    assert all(len(s) == 3 and " " not in s for s in shingles(ko, "ko"))
    assert all(len(s.split(" ")) == 3 for s in shingles(LEAD, "en"))  # space-delimited scripts: word 3-grams
    assert shingles(ko, None) == shingles(ko, "ko")  # Hangul is shingled by character even without a tag
    index = NearDuplicates()
    assert index.check_and_add("k1", signature(ko, "ko")) is None
    assert index.check_and_add("k2", signature(changed, "ko")) == "k1"
    assert index.check_and_add("k3", signature(other, "ko")) is None


def test_rebuild_from_signatures_gives_the_same_answers() -> None:
    index, _ = _index(ORIGINAL, REWRITE, UNRELATED)
    index.remove("a0")  # the original ages out before the restart; its copy keeps the link
    stored = [(key, sig.to_bytes(), original) for key, sig, original in index.entries()]
    rebuilt = NearDuplicates.from_signatures((k, Signature.from_bytes(b), o) for k, b, o in stored)
    assert list(rebuilt.entries()) == list(index.entries())
    for probe in (ORIGINAL, SAME_EVENT, UNRELATED):
        sig = signature(probe, "en")
        assert rebuilt.check_and_add("probe", sig) == index.check_and_add("probe", sig)
    assert rebuilt.original_of("probe") == "a0"  # a copy of the surviving copy links to the aged-out original


def test_signature_bytes_are_equal_in_two_fresh_processes() -> None:
    code = (
        "from stream_worker.stories.dedup import signature;"
        f"print(signature({ORIGINAL!r}, 'en').to_bytes().hex(), signature('서울 아파트 가격', 'ko').to_bytes().hex())"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert runs[0].split()[0] == signature(ORIGINAL, "en").to_bytes().hex()


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="no letters or digits"):
        signature(" ... ", "en")
    with pytest.raises(ValueError, match="bytes"):
        Signature.from_bytes(b"short")
    index, _ = _index(ORIGINAL)
    with pytest.raises(ValueError, match="twice"):
        NearDuplicates.from_signatures([("x", signature(ORIGINAL, "en"), None)] * 2)


FED = (
    "FED ADDS RESERVES VIA CUSTOMER REPURCHASES The Federal Reserve entered the U.S. Government securities market to "
    "arrange 1.5 billion dlrs of customer repurchase agreements, a Fed spokesman said. Dealers said Federal funds were "
    "trading at 6-3/16 pct when the Fed began its temporary and indirect supply of reserves to the banking system."
)


def test_a_template_item_with_other_figures_is_not_a_duplicate_but_a_fuller_resend_is() -> None:
    # Same words, a replaced figure: the Fed's operation on another day. Same figures plus a note: a fuller re-send.
    other = FED.replace("6-3/16", "6-1/4")
    fuller = f"{FED} The Fed added 2.5 billion dlrs of reserves on Friday, March 13, 1987."
    sig, sig_other, sig_fuller = (signature(t, "en") for t in (FED, other, fuller))
    assert sig.number_conflict(sig_other) == 0.5  # 6-3/16 replaced by 6-1/4 (one fraction, one number), 1.5 kept
    assert sig.number_conflict(sig_fuller) == 0.0  # numbers only added: no conflict
    assert sig.jaccard(sig_other) >= NearDuplicates().threshold  # the text alone would call it a duplicate
    index = NearDuplicates()
    assert index.check_and_add("fund-a", sig) is None
    assert index.check_and_add("fund-b", sig_other) is None
    assert index.check_and_add("fund-a-resent", sig_fuller) == "fund-a"
    assert NearDuplicates(number_conflict=None).check_and_add("x", sig) is None


def test_exact_jaccard_is_used_when_both_signatures_carry_shingles() -> None:
    a, b = signature(ORIGINAL, "en"), signature(REWRITE, "en")
    sa, sb = shingles(ORIGINAL, "en"), shingles(REWRITE, "en")
    assert a.jaccard(b) == pytest.approx(len(sa & sb) / len(sa | sb))
    assert a.containment(b) == pytest.approx(len(sa & sb) / min(len(sa), len(sb)))


def test_format_1_signatures_are_still_read_and_compared_by_the_estimate() -> None:
    new = signature(ORIGINAL, "en")
    head = 13  # format 3: the byte 3 and six uint16 counts
    legacy = Signature.from_bytes(new.to_bytes()[head : head + 4 * 128])  # what format 1 stored: the bare MinHash
    assert legacy.shingle_hashes is None and legacy.to_bytes() == new.to_bytes()[head : head + 4 * 128]
    assert new.to_bytes()[0] == 3 and Signature.from_bytes(new.to_bytes()) == new
    assert legacy.containment(new) is None and legacy.number_conflict(new) is None
    assert legacy.name_conflict(new) is None
    assert legacy.jaccard(new) == 1.0  # the same MinHash
    index = NearDuplicates.from_signatures([("old", legacy, None)])
    assert index.check_and_add("new", new) == "old"
    with pytest.raises(ValueError, match="format 3"):
        Signature.from_bytes(new.to_bytes()[:-4])


def test_format_2_signatures_are_still_read() -> None:
    new = signature(ORIGINAL, "en")
    assert new.shingle_hashes is not None and new.number_hashes is not None
    v2 = Signature(new.hashvalues, new.shingle_hashes, new.number_hashes)
    data = v2.to_bytes()
    assert data[0] == 2 and Signature.from_bytes(data) == v2 and v2.name_conflict(new) is None
    assert v2.jaccard(new) == 1.0


def _fund(name: str) -> Signature:
    title = f"FRANKLIN {name.upper()} TAX-FREE SETS PAYOUT"
    return signature(
        article_text(
            title,
            None,
            f"Mthly div 7.1 cts vs 7.1 cts prior. Pay March 31. Record March 16. NOTE: Franklin {name} Tax-Free "
            "Income Fund, a unit of Franklin Resources.",
        ),
        "en",
        title=title,
    )


def test_a_template_item_about_another_fund_or_company_is_not_a_duplicate() -> None:
    # Same words and figures, another fund: each headline names what the other never mentions.
    insured, puerto_rico = _fund("Insured"), _fund("Puerto Rico")
    assert insured.jaccard(puerto_rico) >= NearDuplicates().threshold and insured.number_conflict(puerto_rico) == 0
    assert insured.name_conflict(puerto_rico)
    index = NearDuplicates()
    assert index.check_and_add("insured", insured) is None
    assert index.check_and_add("puerto-rico", puerto_rico) is None
    assert index.check_and_add("insured-resent", _fund("Insured")) == "insured"
    assert NearDuplicates(entity_veto=False).duplicates(insured, puerto_rico) is not None
    # Wire flashes (no lower case at all): every headline word counts; and tickers that differ.
    raytheon = signature("RAYTHEON CO 1ST QTR SHR 1.37 DLRS VS 1.19 DLRS", "en", title="RAYTHEON CO 1ST QTR SHR")
    ge = signature("GENERAL ELECTRIC CO 1ST QTR SHR 1.37 DLRS VS 1.18 DLRS", "en", title="GENERAL ELECTRIC CO 1ST QTR")
    assert raytheon.name_conflict(ge)
    body = "Qtly div 10 cts vs 10 cts prior Pay April 15 Record March 31"
    a = signature(f"CONCHEMCO INC <CKC> SETS QUARTERLY {body}", "en", title="CONCHEMCO INC <CKC> SETS QUARTERLY")
    b = signature(f"M.D.C. HOLDINGS <MDC> SETS QUARTERLY {body}", "en", title="M.D.C. HOLDINGS <MDC> SETS QUARTERLY")
    assert a.name_conflict(b)


def test_a_name_added_or_a_reworded_headline_is_no_conflict() -> None:
    # A fuller headline adds a name the other body mentions; a rewrite swaps common words, not names.
    lead = (
        "Malaysia will cancel visa-free entry for North Koreans entering the country starting next week, state news "
        "agency Bernama reported on Thursday, citing deputy prime minister Ahmad Zahid Hamidi."
    )
    a = signature(
        article_text("Malaysia to cancel visa-free entry", None, lead), "en", title="Malaysia to cancel visa-free entry"
    )
    title = "Malaysia scraps visa-free travel for North Koreans, Bernama says"
    b = signature(article_text(title, None, lead.replace("cancel", "scrap")), "en", title=title)
    assert not a.name_conflict(b)
    assert NearDuplicates().duplicates(a, b) is not None


def test_sketch_jaccard_is_close_for_long_texts() -> None:
    # Texts with more shingles than the sketch keeps: the bottom-k estimate stays within a few points.
    rng = random.Random(15)
    words = [f"w{rng.randrange(5_000)}" for _ in range(3_000)]
    a, b = " ".join(words[:2_000]), " ".join(words[800:])
    sa, sb = shingles(a, "en"), shingles(b, "en")
    assert min(len(sa), len(sb)) > 1024
    exact = len(sa & sb) / len(sa | sb)
    assert signature(a, "en").jaccard(signature(b, "en")) == pytest.approx(exact, abs=0.05)
