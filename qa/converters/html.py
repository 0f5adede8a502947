"""HTML with trafilatura (the article body), falling back to selectolax (all visible text).

trafilatura finds the main text of a saved web page and drops navigation, cookie banners, side
bars and footers; tables are kept (cells separated by " | "). The page ``<title>`` is put first
when the body does not already start with it. When trafilatura finds no main text (short pages,
unusual layouts), selectolax gives the visible text of ``<body>`` without scripts, styles and
templates. A page with neither is refused as ``html_no_text``. Comparison: docs/converters.md.
"""

from __future__ import annotations

from qa.converters.base import ConversionError, Extraction, tidy

RULES = 1
_INVISIBLE = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")


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


_BLOCKS = ("p, div, section, article, main, header, footer, nav, aside, h1, h2, h3, h4, h5, h6, li, dt, dd, "
           "tr, br, hr, pre, blockquote, figcaption, caption, table, ul, ol, dl, address, form, fieldset")


def _fallback_text(tree) -> str:
    """Visible text of <body>: block elements end a line, table cells are joined by " | "."""
    body = tree.body or tree.root
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

        html = _decode(data)
        if "\x00" in html:
            html = html.replace("\x00", "")
        try:
            body = trafilatura.extract(
                html, output_format="txt", include_tables=True, include_comments=False,
                include_links=False, include_images=False, favor_precision=False, deduplicate=False,
            ) or ""
        except Exception:  # noqa: BLE001 - a page trafilatura chokes on falls back to selectolax
            body = ""
        tree = HTMLParser(html)
        title = _title(tree)
        body = tidy(body)
        if not body.strip():
            body = _fallback_text(tree)
        if not body.strip():
            raise ConversionError("has no readable text in its body (only markup, scripts or images)", "html_no_text")
        if title and not body.startswith(title):
            body = f"{title}\n\n{body}"
        return Extraction(text=body, converter=self.name, version=self.version())
