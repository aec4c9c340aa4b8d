// Search highlights as data, never as markup. The API sends fragments with the matches between
// <mark> and </mark> and everything else HTML-escaped; the page must not trust that escaping with a
// raw-HTML binding. This splits a fragment on exactly those two tags, decodes the character references the
// escaping produced, and returns plain text segments that templates render with {{ }} (Vue escapes
// them again). Anything else that looks like a tag stays text, so a fragment carrying a raw
// <script> shows the characters "<script>" and runs nothing.

/** A run of text, marked (a match) or not. */
export interface HighlightSegment {
  text: string
  mark: boolean
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' }

/** Decode the character references an HTML escaper writes (&amp; &lt; &#39; &#x27; ...); unknown ones stay as they are. */
export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10)
      // Out of range or a control character: leave the reference as written rather than invent one.
      if (!Number.isFinite(code) || code > 0x10ffff || (code < 0x20 && code !== 0x09 && code !== 0x0a)) return whole
      return String.fromCodePoint(code)
    }
    return NAMED[ref.toLowerCase()] ?? whole
  })
}

/**
 * One highlight fragment as segments. `<mark>` opens a match and `</mark>` closes it (case-insensitive);
 * an unclosed mark runs to the end; a stray `</mark>` is dropped. Empty segments are left out and
 * neighbours of the same kind are merged.
 */
export function highlightSegments(fragment: string): HighlightSegment[] {
  const segments: HighlightSegment[] = []
  const push = (raw: string, mark: boolean) => {
    const text = decodeEntities(raw)
    if (!text) return
    const last = segments[segments.length - 1]
    if (last && last.mark === mark) last.text += text
    else segments.push({ text, mark })
  }
  let mark = false
  for (const part of fragment.split(/(<\/?mark>)/i)) {
    const tag = part.toLowerCase()
    if (tag === '<mark>') mark = true
    else if (tag === '</mark>') mark = false
    else push(part, mark)
  }
  return segments
}

/** The fragment's plain text (no marks), e.g. for a title attribute or a test. */
export function highlightText(fragment: string): string {
  return highlightSegments(fragment)
    .map((s) => s.text)
    .join('')
}

/** Plain text as a fragment without marks (the inverse of the decoding above), for text the API did not highlight. */
export function escapeForHighlight(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}
