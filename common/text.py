"""Text and URL normalisation used by the schemas' validators (pure functions, no I/O)."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import nh3

__all__ = ["article_id", "canonical_url", "clean_text", "truncate"]

# Zero-width and bidi control characters carry no meaning in a headline and are a
# classic vector for spoofed text; they are removed before whitespace is collapsed.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACE = re.compile(r"\s+")
# Bounding the markup we feed the sanitizer keeps a hostile 50 MB body cheap;
# it is cut again, as text, at the field's own limit.
_MAX_MARKUP = 1_000_000

_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_")
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "ocid", "cmpid", "_ga", "_gl", "ref_src", "smid"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def clean_text(value: str, *, markup: bool = True) -> str:
    """Text as the suite stores it: NFC, no invisible or control characters, one space between words.

    With `markup=True` (text entering the suite) the value is first read as HTML: tags and
    script/style bodies dropped, entities unescaped. That step is done once, where text enters;
    text that is already the suite's own (`markup=False`) is never parsed again, because a
    headline about "&lt;canvas&gt;" is, after one pass, the text "<canvas>", and a second
    pass would delete it. `clean_text(clean_text(x), markup=False) == clean_text(x)`.
    """
    if markup and ("<" in value or "&" in value):
        value = nh3.clean(value[:_MAX_MARKUP], tags=set(), attributes={}, strip_comments=True)
        # nh3 escapes what it keeps; one unescape gives text. A second pass would turn a
        # literal "&lt;" typed by the author into "<", which is the author's text, not markup.
        value = html.unescape(value)
    value = unicodedata.normalize("NFC", value)
    value = _INVISIBLE.sub("", value)
    value = _CONTROL.sub(" ", value)
    return _SPACE.sub(" ", value).strip()


def truncate(value: str, limit: int) -> str:
    """Cut at `limit` characters, on a word boundary when one is near, marking the cut with an ellipsis."""
    if len(value) <= limit:
        return value
    cut = value[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


def canonical_url(url: str) -> str:
    """Canonical form used for identity: lower-case scheme/host, no default port, no tracking, no fragment."""
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"URL must be http or https, got {parts.scheme or 'no scheme'!r}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise ValueError("URL has no host")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"URL host is not a valid domain name: {exc}") from None
    netloc = host
    if parts.port is not None and parts.port != _DEFAULT_PORTS[scheme]:
        netloc = f"{host}:{parts.port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _TRACKING_PARAMS and not k.lower().startswith(_TRACKING_PREFIXES)
    ]
    query.sort()
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def article_id(url: str) -> str:
    """Stable id of an article: the first 128 bits of SHA-256 over its canonical URL, in hex."""
    return hashlib.sha256(canonical_url(url).encode("utf-8")).hexdigest()[:32]
