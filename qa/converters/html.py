"""HTML with trafilatura (the article body), falling back to selectolax (all visible text).

trafilatura finds the main text of a saved web page and drops navigation, cookie banners, side
bars and footers; tables are kept (rows as "| a | b |"). The page ``<title>`` is put first when
the body does not already start with it. Two guards, both found by the property tests in
tests/test_converters.py:

* When the page has an ``<article>`` (else ``<main>``) and trafilatura's text misses any word of
  it (``MIN_RECALL``), the visible text of that element (selectolax) is served instead: on short
  pages trafilatura sometimes drops a whole table, or keeps the cookie banner instead of the article.
* When trafilatura finds nothing, selectolax gives the visible text of ``<body>`` without scripts,
  styles and templates.

A page with no visible text at all is refused as ``html_no_text``, one with block elements nested deeper than
``MAX_BLOCK_DEPTH`` as ``html_too_deep`` (lexbor's parsing time grows with the square of that depth: a 1 MB
file of nested ``<div>`` took ~17 s of a server's CPU; real pages nest a few dozen). Known loss of trafilatura: a
heading with nothing after it at the very end of an article. Comparison: docs/converters.md.
"""

from __future__ import annotations

import re
from collections import Counter

from qa.converters.base import ConversionError, Extraction, looks_binary, tidy

RULES = 1
_INVISIBLE = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")


#: Block elements whose start tag makes an HTML parser search the open elements for a <p> to close (the HTML
#: standard's tree construction), so each one costs time in proportion to how deeply it is nested.
_BLOCK_TAG = re.compile(
    r"<(/?)(?:address|article|aside|blockquote|center|details|dialog|dir|div|dl|fieldset|figcaption|figure|footer"
    r"|header|hgroup|main|menu|nav|ol|search|section|summary|ul)(?=[\s/>])", re.I)
MAX_BLOCK_DEPTH = 2000


def block_depth(html: str) -> int:
    """How deeply block elements are nested, counted from their start and end tags (a cheap upper bound: tags
    inside comments or scripts count too)."""
    depth = deepest = 0
    for m in _BLOCK_TAG.finditer(html):
        if m.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def _decode(data: bytes) -> str:
    """UTF-8 (a BOM dropped) if it is, else trafilatura's charset detection (<meta charset>, then guessing)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        from trafilatura.utils import decode_file

        return decode_file(data)


def _title(tree) -> str:
    node = tree.css_first("title")
    return " ".join(node.text().split()) if node is not None else ""


#: Share of the words of the page's <article>/<main> that trafilatura's text must keep (all: it sometimes
#: drops a whole table or keeps a cookie banner instead of the article; recall matters more for QA).
MIN_RECALL = 1.0
_WORD = re.compile(r"\w+")


def _main_container(tree):
    """The page's <article> (the longest, if several) or else its <main>, or None."""
    articles = tree.css("article")
    if articles:
        return max(articles, key=lambda n: len(n.text() or ""))
    return tree.css_first("main")


def _recall(extracted: str, reference: str) -> float:
    """Share of ``reference``'s words (with multiplicity) found in ``extracted``."""
    ref = Counter(w.lower() for w in _WORD.findall(reference))
    if not ref:
        return 1.0
    got = Counter(w.lower() for w in _WORD.findall(extracted))
    return sum(min(n, got[w]) for w, n in ref.items()) / sum(ref.values())


_BLOCKS = ("p, div, section, article, main, header, footer, nav, aside, h1, h2, h3, h4, h5, h6, li, dt, dd, "
           "tr, br, hr, pre, blockquote, figcaption, caption, table, ul, ol, dl, address, form, fieldset")


def _fallback_text(tree) -> str:
    """Visible text of <body> (or of one element): block elements end a line, table cells are
    joined by " | ". Changes the tree (scripts and styles removed, separators added)."""
    body = (tree.body or tree.root) if hasattr(tree, "body") else tree
    if body is None:
        return ""
    for tag in _INVISIBLE:
        for node in body.css(tag):
            node.decompose()
    for node in body.css("td, th"):
        node.insert_after(" | ")
    for node in body.css(_BLOCKS):
        node.insert_after("\n")
    lines = []
    for line in body.text(separator="").split("\n"):
        line = " ".join(line.split())
        lines.append(line[:-2] if line.endswith(" |") else line)
    return tidy("\n".join(lines))


_CONFIG = None


def _config():
    """trafilatura's settings, changed in two places: short pages keep their main-text extraction
    (MIN_EXTRACTED_SIZE 1 instead of 250: otherwise a short page falls back to a baseline that keeps
    menus and splits table cells onto lines), and no SIGALRM timeout (we run in worker threads)."""
    global _CONFIG
    if _CONFIG is None:
        from trafilatura.settings import use_config

        config = use_config()
        config["DEFAULT"]["MIN_EXTRACTED_SIZE"] = "1"
        config["DEFAULT"]["EXTRACTION_TIMEOUT"] = "0"
        _CONFIG = config
    return _CONFIG


class HtmlConverter:
    name = "html"
    suffixes = (".html", ".htm")

    def version(self) -> str:
        import selectolax
        import trafilatura

        return f"trafilatura {trafilatura.__version__}, selectolax {selectolax.__version__}; rules {RULES}"

    def convert(self, data: bytes) -> Extraction:
        import trafilatura
        from selectolax.lexbor import LexborHTMLParser as HTMLParser

        if looks_binary(data):
            raise ConversionError("is binary data, not a saved web page (it is full of control bytes)", "not_text")
        html = _decode(data)
        if "\x00" in html:
            html = html.replace("\x00", "")
        depth = block_depth(html)
        if depth > MAX_BLOCK_DEPTH:
            raise ConversionError(f"nests block elements (div, section, ul, ...) {depth} deep, more than the "
                                  f"{MAX_BLOCK_DEPTH} this server reads (web pages nest a few dozen); save the page "
                                  "as text and upload that", "html_too_deep")
        try:
            body = trafilatura.extract(
                html, output_format="txt", include_tables=True, include_comments=False,
                include_links=False, include_images=False, deduplicate=False, config=_config(),
            ) or ""
        except Exception:  # noqa: BLE001 - a page trafilatura chokes on falls back to selectolax
            body = ""
        tree = HTMLParser(html)
        title = _title(tree)
        body = tidy(body)
        container = _main_container(tree)
        if container is not None:
            # trafilatura's guess is checked against the page's own <article>/<main>: on short pages it
            # sometimes keeps a cookie banner instead of the article (found by tests/test_converters.py)
            article = _fallback_text(container)
            if _recall(body, article) < MIN_RECALL:
                body = article
        if not body.strip():
            body = _fallback_text(tree)
        if not body.strip():
            raise ConversionError("has no readable text in its body (only markup, scripts or images)", "html_no_text")
        if title and not body.startswith(title):
            body = f"{title}\n\n{body}"
        return Extraction(text=body, converter=self.name, version=self.version())
