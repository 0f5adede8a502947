"""Browser tests of the chat page: Debian's Chromium, headless, driven by playwright (sync API).

* ``test_chat_page_*`` (fast): the real app served by uvicorn in a thread, wired to the
  in-memory FakePipeline, so the page's logic (rendering as text, code-point offsets with
  non-BMP characters, keyboard use, narrow screens) is tested deterministically.
* ``test_real_server_end_to_end``: ``qa serve`` in a subprocess on a temp copy of seeds/ plus a
  document with ``<script>`` text and emoji; needs the trained reader in models/reader.

Chromium must be at /usr/bin/chromium (``make browser-deps``); if it is missing these tests
FAIL, they do not skip. Screenshots go to test-output/browser/ (gitignored); paths are printed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from api.app import create_app
from api_fake import FakePipeline
from qa.config import PROJECT_ROOT, Settings

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT_DIR = PROJECT_ROOT / "test-output" / "browser"
SEEDS = PROJECT_ROOT / "seeds"
KZ_QUESTION = "When did the protests in Kazakhstan begin?"

UNSAFE_NAME = "zz_unsafe_notes.txt"
UNSAFE_TEXT = (
    "Unsafe notes 🦄🦄 from the archive\n"
    "<script>window.__pwned=1</script>\n"
    'Unsafe notes with <b>bold</b> and <img src=x onerror="__pwned=2"> tags\n'
    "🧪🧪 The Glimmerdale lantern festival was first held in 1987, in the harbour town of Glimmerdale.\n"
)
GLIMMER_QUESTION = "When was the Glimmerdale lantern festival first held?"


# --------------------------------------------------------------------------- fixtures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_corpus(tmp: Path) -> Path:
    corpus = tmp / "corpus"
    shutil.copytree(SEEDS, corpus)
    (corpus / UNSAFE_NAME).write_text(UNSAFE_TEXT, encoding="utf-8")
    return corpus


def screenshot(page, name: str) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make browser-deps`, i.e. apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class SlowFakePipeline(FakePipeline):
    """Takes a moment to answer (so the busy indicator shows) and refuses 'forbidden' questions."""

    def ask(self, question, top_k=None, max_answers=None, busy=False):
        time.sleep(0.4)
        if "forbidden" in question.lower():
            raise ValueError("questions about forbidden things are not allowed")
        return super().ask(question, top_k, max_answers, busy)


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory):
    import uvicorn

    tmp = tmp_path_factory.mktemp("browser-fake")
    s = Settings(corpus_dir=make_corpus(tmp), index_dir=tmp / "index")
    app = create_app(s, SlowFakePipeline(s), background_warm_up=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    context.close()


# --------------------------------------------------------------------------- page helpers


def ask(page, question: str):
    """Type a question, press Enter, wait for the reply; returns the reply's <li>."""
    n = page.locator("#transcript > li.msg.bot:not(.pending), #transcript > li.msg.error").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    reply = page.locator("#transcript > li.msg.bot:not(.pending), #transcript > li.msg.error").nth(n)
    reply.wait_for(timeout=120_000)
    return reply


def open_chip(page, chip, via_keyboard: bool = False):
    if via_keyboard:
        chip.focus()
        page.keyboard.press("Enter")
    else:
        chip.click()
    page.locator("#source-info", has_text="highlighted").wait_for(timeout=30_000)


def mark_is_visible_in_panel(page) -> bool:
    return page.evaluate(
        """() => {
            const m = document.getElementById('source-mark').getBoundingClientRect();
            const box = document.getElementById('source-text').getBoundingClientRect();
            return m.top >= box.top - 1 && m.bottom <= box.bottom + 1 && m.height > 0;
        }"""
    )


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


# --------------------------------------------------------------------------- fake-pipeline tests


def test_chat_page_answer_citation_and_highlight(page, fake_server):
    page.goto(fake_server + "/")
    page.locator("#service-status", has_text="Ready").wait_for()
    assert page.evaluate("document.activeElement.id") == "question"

    page.fill("#question", KZ_QUESTION)
    page.press("#question", "Enter")
    page.locator("#transcript li.pending").wait_for()  # busy indicator
    assert page.is_disabled("#send")
    reply = page.locator("#transcript > li.msg.bot:not(.pending)").first
    reply.wait_for()
    assert page.locator("#transcript li.pending").count() == 0 and page.is_enabled("#send")
    assert page.locator("#transcript > li.msg.user").first.inner_text().endswith(KZ_QUESTION)

    answer = reply.locator(".answer-text").first.inner_text()
    assert "January 2" in answer
    label = reply.locator(".confidence").first.inner_text()
    assert "%" in label and any(w in label for w in ("very likely right", "likely right", "uncertain", "probably wrong"))
    chip = reply.locator(".chip").first
    label = chip.inner_text()
    doc, span = label.split(" · ")
    start, end = (int(x) for x in span.split("–"))
    assert page.is_hidden("#source-panel")

    open_chip(page, chip)
    assert page.is_visible("#source-panel")
    assert page.locator("#source-title").inner_text() == doc
    mark = page.locator("#source-text mark")
    assert mark.count() == 1 and mark.inner_text() == answer
    assert mark_is_visible_in_panel(page)
    text = get_json(f"{fake_server}/documents/{doc}")["text"]
    assert text[start:end] == answer
    # wide screen: panel beside the chat
    chat_box = page.locator(".chat").bounding_box()
    panel_box = page.locator("#source-panel").bounding_box()
    assert panel_box["x"] >= chat_box["x"] + chat_box["width"] - 1
    screenshot(page, "fake-answer-wide")
    assert page.errors == []


def test_chat_page_says_when_a_busy_server_read_fewer_passages(browser, fake_server):
    """Two people ask at once (QA_ASK_CONCURRENCY is 1 on the CPU): the second question waits, is read by the busy
    cascade (the fake then reads one passage) and its reply says so; the first reply, read whole, does not."""
    pages = []
    for _ in range(2):
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = ctx.new_page()
        pg.goto(fake_server + "/")
        pg.locator("#service-status", has_text="Ready").wait_for()
        pg.fill("#question", KZ_QUESTION)
        pages.append(pg)
    try:
        first, second = pages
        first.press("#question", "Enter")
        first.locator("#transcript li.pending").wait_for()  # its request is being answered (0.4 s)
        second.press("#question", "Enter")
        replies = [pg.locator("#transcript > li.msg.bot:not(.pending)").first for pg in pages]
        for r in replies:
            r.wait_for()
        assert "January 2" in replies[1].locator(".answer-text").first.inner_text()
        note = replies[1].locator(".read-note")
        assert note.count() == 1 and note.inner_text().startswith("Read the best 1 of ")
        assert replies[0].locator(".read-note").count() == 0
    finally:
        for pg in pages:
            pg.context.close()


def test_chat_page_renders_text_not_html_and_handles_non_bmp_offsets(page, fake_server):
    page.goto(fake_server + "/")
    page.locator("#service-status", has_text="Ready").wait_for()

    # The answer sits after two non-BMP emoji on its line: code-point offsets != UTF-16 offsets.
    reply = ask(page, GLIMMER_QUESTION)
    answer = reply.locator(".answer-text").first.inner_text()
    assert "1987" in answer
    chip = reply.locator(".chip").first
    assert chip.get_attribute("data-doc") == UNSAFE_NAME
    start, end = int(chip.get_attribute("data-start")), int(chip.get_attribute("data-end"))
    assert UNSAFE_TEXT[start:end] == answer
    open_chip(page, chip, via_keyboard=True)  # Enter on a focused chip opens it
    assert page.locator("#source-text mark").inner_text() == answer
    assert mark_is_visible_in_panel(page)

    # The document's markup is displayed as text; nothing in it ran or became an element.
    panel_text = page.locator("#source-text").inner_text()
    assert "<script>window.__pwned=1</script>" in panel_text
    assert '<img src=x onerror="__pwned=2">' in panel_text
    assert page.locator("#source-text script, #source-text img, #source-text b").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"

    # An answer containing markup is shown as text too.
    reply = ask(page, "Which unsafe notes have bold tags?")
    assert "<b>bold</b>" in reply.locator(".answer-text").first.inner_text()
    assert page.locator("#transcript b, #transcript img, #transcript script").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    screenshot(page, "fake-unsafe-document")
    assert page.errors == []


def test_chat_page_no_answer_errors_and_keyboard(page, fake_server):
    page.goto(fake_server + "/")
    page.locator("#service-status", has_text="Ready").wait_for()

    reply = ask(page, "zzyzx qwerty")
    assert "Not found in the documents" in reply.inner_text()
    assert "Best guess, not trusted" in reply.locator(".best-guess").inner_text()
    assert "low confidence, check the source (5%)" in reply.locator(".best-guess .confidence").inner_text()
    # the best guess's chip opens where its first citation stands
    g = reply.locator(".best-guess .chip")
    assert g.count() == 1
    gdoc, gs, ge = g.get_attribute("data-doc"), int(g.get_attribute("data-start")), int(g.get_attribute("data-end"))
    open_chip(page, g)
    assert page.locator("#source-text mark").inner_text() == get_json(f"{fake_server}/documents/{gdoc}")["text"][gs:ge]
    page.keyboard.press("Escape")
    passages = reply.locator(".passages .chip")
    assert passages.count() >= 1
    p = passages.first
    doc, start, end = p.get_attribute("data-doc"), int(p.get_attribute("data-start")), int(p.get_attribute("data-end"))
    open_chip(page, p, via_keyboard=True)
    expected = get_json(f"{fake_server}/documents/{doc}")["text"][start:end]
    assert page.locator("#source-text mark").inner_text() == expected

    # Escape closes the panel and gives focus back to the chip that opened it.
    page.keyboard.press("Escape")
    assert page.is_hidden("#source-panel")
    assert page.evaluate("document.activeElement.dataset.doc") == doc

    # Errors from the server are shown in the conversation.
    reply = ask(page, "Tell me the forbidden secret")
    assert "error" in (reply.get_attribute("class") or "")
    assert "forbidden things are not allowed" in reply.inner_text()
    assert reply.get_attribute("role") == "alert"

    # Keyboard only: Tab from the question box reaches the Ask button, then the chips.
    page.focus("#question")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "send"
    page.focus("#question")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.classList.contains('chip')")
    # a focused chip shows a focus outline
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    page.keyboard.press(" ")  # Space opens it too
    page.locator("#source-info", has_text="highlighted").wait_for()
    assert page.is_visible("#source-panel")
    assert page.get_attribute("#transcript", "aria-live") == "polite"
    assert page.errors == []


def test_api_docs_render_without_network(page, fake_server):
    """/docs (Swagger UI) works offline: every request off the test server is refused."""
    outside: list[str] = []

    def only_local(route):
        if route.request.url.startswith(fake_server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(fake_server + "/docs")
    page.locator(".swagger-ui .info .title", has_text="Document QA").wait_for(timeout=30_000)
    page.locator(".opblock-summary-path", has_text="/ask").first.wait_for(timeout=30_000)
    assert outside == [] and page.errors == []


def test_chat_page_on_a_phone_screen(browser, fake_server):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(fake_server + "/")
        page.locator("#service-status", has_text="Ready").wait_for()
        reply = ask(page, KZ_QUESTION)
        reply.locator(".chip").first.tap()
        page.locator("#source-info", has_text="highlighted").wait_for()
        chat = page.locator(".chat").bounding_box()
        panel = page.locator("#source-panel").bounding_box()
        assert panel["y"] >= chat["y"] + chat["height"] - 1  # below the chat
        assert panel["width"] <= 375
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
        assert mark_is_visible_in_panel(page)
        screenshot(page, "fake-phone")
        # a long file name without spaces in the status lines and the trash does not push the page sideways
        # (a UI audit, 2026-12-07: 789 px wide at a 98-character name)
        page.evaluate("""name => {
            document.getElementById('doc-list').open = true;
            document.getElementById('service-status').textContent = 'Deleted ' + name;
            document.getElementById('upload-status').textContent = 'Added ' + name + '. You can ask about it now.';
            const li = document.createElement('li');
            li.textContent = name + ' (deleted 2026-12-07T20:00:00+00:00)';
            document.getElementById('trash-items').append(li);
        }""", "a_very_long_file_name_without_any_spaces_" * 3 + ".txt")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()


# --------------------------------------------------------------------------- uploads (PDF, DOCX, HTML)

HARBOUR_PAGES = [
    [("heading", "Annual harbour report"), ("para", "The report describes the harbour, its piers and its cranes.")],
    [("heading", "Ferries"), ("para", "The ferry to Tesk island leaves every Tuesday morning."),
     ("table", [["Route", "Boat"], ["Tesk", "Marta"]])],
    [("heading", "Lighthouses"), ("para", "The Quillon lighthouse was built in 1873 by the engineer Marta Okonkwo.")],
    [("heading", "Budget"), ("para", "The harbour spent 40 000 crowns on new cranes in 2025.")],
]
QUILLON_QUESTION = "Who built the Quillon lighthouse?"


def delete_document(base: str, doc_id: str) -> None:
    req = urllib.request.Request(f"{base}/documents/{urllib.parse.quote(doc_id)}", method="DELETE")
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(req, timeout=30).close()


def upload_from_page(page, name: str, data: bytes, mime: str, *, drop: str | None = None) -> str:
    """Upload through the file picker, or by dropping the file on the element ``drop``; returns the
    status text."""
    if drop:
        handle = page.evaluate_handle(
            """([name, b64, mime]) => {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], name, { type: mime }));
                return dt;
            }""",
            [name, base64.b64encode(data).decode(), mime],
        )
        page.dispatch_event(drop, "dragenter", {"dataTransfer": handle})
        assert "dragging" in page.get_attribute("#drop-zone", "class")
        page.dispatch_event(drop, "drop", {"dataTransfer": handle})
    else:
        page.set_input_files("#file-input", files=[{"name": name, "mimeType": mime, "buffer": data}])
    status = page.locator("#upload-status.ok, #upload-status.bad")
    status.wait_for(timeout=120_000)
    return status.inner_text()


def test_chat_page_uploads_a_pdf_asks_and_highlights_on_its_page(page, fake_server):
    from docgen import make_pdf

    name = "harbour report.pdf"
    page.goto(fake_server + "/")
    page.locator("#service-status", has_text="Ready").wait_for()
    try:
        status = upload_from_page(page, name, make_pdf(HARBOUR_PAGES), "application/pdf")
        assert status == f"Added {name} (4 pages). You can ask about it now.", status
        assert page.is_hidden("#upload-progress")
        item = page.locator(f'#doc-list-items li[data-doc="{name}"]')
        item.wait_for()
        assert "PDF, 4 pages" in item.inner_text()

        reply = ask(page, QUILLON_QUESTION)
        answer = reply.locator(".answer-text").first.inner_text()
        assert "Okonkwo" in answer, answer
        chip = reply.locator(".chip").first
        assert chip.get_attribute("data-doc") == name and chip.get_attribute("data-page") == "3"
        assert " · p. 3 · " in chip.inner_text()
        start, end = int(chip.get_attribute("data-start")), int(chip.get_attribute("data-end"))
        served = get_json(f"{fake_server}/documents/{urllib.parse.quote(name)}")
        assert served["text"][start:end] == answer
        assert served["page_starts"][2] <= start < served["page_starts"][3]

        open_chip(page, chip)
        assert page.locator("#source-text mark").inner_text() == answer
        assert mark_is_visible_in_panel(page)
        info = page.locator("#source-info").inner_text()
        assert info.startswith(f"Page 3 · characters {start}–{end} highlighted") and "extracted" in info
        # the panel shows the extracted text, and links the original PDF as a download
        assert page.locator("#source-text").inner_text().replace("\n", "") == served["text"].replace("\n", "")
        link = page.locator("#source-original")
        assert link.get_attribute("href") == "/documents/harbour%20report.pdf?original=true"
        screenshot(page, "fake-pdf-page-3")
        assert page.errors == []
    finally:
        delete_document(fake_server, name)


def test_chat_page_drag_and_drop_and_the_servers_errors(page, fake_server):
    from docgen import make_docx, make_image_only_pdf

    page.goto(fake_server + "/")
    page.locator("#service-status", has_text="Ready").wait_for()
    before = get_json(f"{fake_server}/documents")
    # a scan without a text layer: refused, the server's message shown as an alert, nothing added
    status = upload_from_page(page, "scan.pdf", make_image_only_pdf(2), "application/pdf", drop="#drop-zone")
    assert status.startswith("Not added: file 'scan.pdf' has no text layer"), status
    assert page.get_attribute("#upload-status", "role") == "alert"
    assert get_json(f"{fake_server}/documents") == before
    # a Word file dropped onto the zone is added
    try:
        docx = make_docx([[("heading", "Minutes"), ("para", "The Glimmerdale council met on 3 March 2026.")]])
        # dropped anywhere on the page (here: the conversation), not only on the drop zone
        status = upload_from_page(page, "minutes.docx", docx, "application/octet-stream", drop="#transcript")
        assert status.startswith("Added minutes.docx"), status
        assert "dragging" not in page.get_attribute("#drop-zone", "class")
        page.locator('#doc-list-items li[data-doc="minutes.docx"]', has_text="DOCX").wait_for()
        reply = ask(page, "When did the Glimmerdale council meet?")
        chip = reply.locator(".chip").first
        assert chip.get_attribute("data-doc") == "minutes.docx" and chip.get_attribute("data-page") is None
        assert " p. " not in chip.inner_text()
        assert page.errors == []
    finally:
        delete_document(fake_server, "minutes.docx")


def fulfil_json(route, body, status: int = 200) -> None:
    route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


def answer_body(question: str, text: str, score: float, doc: str, start: int, end: int) -> dict:
    cit = {"document": doc, "start": start, "end": end, "text": text, "score": score, "context": text,
           "context_start": start, "context_end": end, "page": None}
    ans = {"text": text, "score": score, "page": None, "citations": [cit]}
    return {"question": question, "answer_found": True, "answers": [ans], "best_guess": ans, "passages": [],
            "no_answer_score": 0.1, "passages_read": 0, "timing_ms": {"total": 1.0}}


def test_chat_page_details_a_ui_audit_found(page, fake_server):
    """What a UI audit of the page found (2026-12-07), each with the answer the server could give, served by
    playwright in place of the server's so the case is exact."""
    page.goto(fake_server + "/")
    page.locator("#service-status", has_text="Ready").wait_for()
    doc = get_json(f"{fake_server}/documents")["documents"][0]["id"]
    text = get_json(f"{fake_server}/documents/{doc}")["text"]

    # a passage snippet is cut at 240 code points, never inside an emoji's surrogate pair (it showed "�…")
    passage = "a" * 239 + "\U0001F984" + "b" * 50
    body = {"question": "q", "answer_found": False, "answers": [], "best_guess": None, "no_answer_score": 0.9,
            "passages": [{"document": doc, "start": 0, "end": 290, "score": 0.5, "rank": 1, "text": passage}],
            "passages_read": 1, "timing_ms": {"total": 1.0}}
    page.route("**/ask", lambda route: fulfil_json(route, body))
    reply = ask(page, "Where is the unicorn?")
    assert reply.locator(".snippet").evaluate("n => n.textContent") == "a" * 239 + "\U0001F984" + "…"
    page.unroute("**/ask")

    # an answer the server gives (score above its threshold, ~0.25) is not called "probably wrong"
    body = answer_body("q", text[:9], 0.31, doc, 0, 9)
    page.route("**/ask", lambda route: fulfil_json(route, body))
    label = ask(page, "What happened to gas prices?").locator(".answer-line .confidence").inner_text()
    assert label == "low confidence, check the source (31%)", label

    # a citation whose document changed since the answer (replaced, or deleted and uploaded again): the panel
    # says so instead of highlighting whatever stands at those offsets now
    body = answer_body("q", "Not what the document says now", 0.9, doc, 0, 30)
    reply = ask(page, "Which text was there?")
    reply.locator(".chip").first.click()
    page.locator("#source-info", has_text="changed since this answer").wait_for()
    assert page.locator("#source-text mark").count() == 0
    page.keyboard.press("Escape")
    page.unroute("**/ask")

    # the answer arriving does not pull the focus back while the user types elsewhere (a key went half into
    # the question box); the question stays out of the box
    held = []
    page.route("**/ask", lambda route: held.append(route))
    page.fill("#question", "What is held back?")
    page.press("#question", "Enter")
    deadline = time.monotonic() + 30
    while not held:
        assert time.monotonic() < deadline
        page.wait_for_timeout(50)
    page.click("#key-box > summary")
    page.focus("#api-key")
    fulfil_json(held[0], answer_body("q", text[:9], 0.9, doc, 0, 9))
    page.locator("#transcript > li.msg.bot:not(.pending)").last.wait_for()
    page.wait_for_timeout(300)
    assert page.evaluate("document.activeElement.id") == "api-key"
    page.unroute("**/ask")

    # the box no longer cuts a question at 1,000 UTF-16 units (500 emoji), while the server counts 1,000 code
    # points; one the server refuses (here 1,105 code points) goes back into the box with the server's reason
    long_q = "\U0001F984" * 1100 + " why?"
    page.fill("#question", long_q)
    assert page.input_value("#question") == long_q
    page.press("#question", "Enter")
    page.locator("#transcript > li.msg.error", has_text="1000").wait_for()
    assert page.input_value("#question") == long_q

    # a server that stops answering: the header no longer says "Ready" (it used to, until a reload)
    page.route("**/ask", lambda route: route.abort())
    page.route("**/ready", lambda route: route.abort())
    page.fill("#question", "Anyone there?")
    page.press("#question", "Enter")
    page.locator("#transcript > li.msg.error", has_text="could not reach the server").wait_for()
    page.locator("#service-status.bad", has_text="Cannot reach the server").wait_for(timeout=10_000)
    page.unroute("**/ready")
    page.locator("#service-status.ok", has_text="Ready").wait_for(timeout=10_000)  # polled again
    assert page.errors == []


def test_chat_page_follows_a_job_through_a_server_restart(page, fake_server):
    """A 202 upload whose server restarts while its job waits (2026-12-08 audit): polls that cannot reach the
    server are retried, and a job the restarted server no longer knows (jobs live in its memory) is judged by
    the document list. The page said "Not added" in both cases, also for uploads the restart had indexed (a
    graceful shutdown finishes every queued job). Served by playwright in place of the server's answers."""
    page.goto(fake_server + "/")
    page.locator("#service-status", has_text="Ready").wait_for()
    listed = get_json(f"{fake_server}/documents")["documents"]
    indexed: list[str] = []
    polls: list[str] = []

    def documents(route):
        if route.request.method == "POST":
            return fulfil_json(route, {"id": "f00d", "kind": "upload", "status": "queued", "created_at": "now",
                                       "finished_at": None, "result": None, "error": None}, 202)
        extra = [{"id": i, "size": 9, "sha256": "0" * 64, "chunk_count": 1, "converter": "text", "pages": None}
                 for i in indexed]
        fulfil_json(route, {"documents": listed + extra})

    def jobs(route):
        polls.append(route.request.url)
        if len(polls) % 3 != 0:  # the server is restarting: nothing listens
            return route.abort()
        fulfil_json(route, {"error": "not_found", "message": "unknown job (jobs are kept in memory until a restart)"},
                    404)

    page.route("**/documents", documents)
    page.route("**/jobs/*", jobs)
    indexed.append("kept.txt")  # the graceful shutdown finished the job
    status = upload_from_page(page, "kept.txt", b"Kept text.", "text/plain")
    assert status == "Added kept.txt (the server restarted meanwhile). You can ask about it now.", status
    assert len(polls) == 3 and polls[0].endswith("/jobs/f00d")
    page.locator('#doc-list-items li[data-doc="kept.txt"]').wait_for()
    status = upload_from_page(page, "lost.txt", b"Lost text.", "text/plain")  # a kill -9: the job never ran
    assert status == "Not added: the server restarted before lost.txt was indexed; add it again.", status
    page.unroute("**/documents")
    page.unroute("**/jobs/*")
    assert page.errors == []


@contextlib.contextmanager
def keyed_lite_server(tmp: Path, scope: str, **overrides):
    """The real write path (small stand-in models) with an API key of ``scope``, served by uvicorn in a thread:
    yields (url, key, settings)."""
    import uvicorn

    from lite_pipeline import LitePipeline, lite_settings
    from qa.keys import KeyStore

    s = lite_settings(make_corpus(tmp), tmp / "index", reload_interval_s=0, **overrides)
    key = KeyStore(s.resolved_keys_file()).add("browser", scope)
    app = create_app(s, LitePipeline(s), background_warm_up=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", key, s
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    """The real write path (small stand-in models) with API keys configured."""
    with keyed_lite_server(tmp_path_factory.mktemp("browser-keys"), "write") as served:
        yield served


@pytest.fixture(scope="module")
def read_keyed_server(tmp_path_factory):
    """Like keyed_server, with QA_REQUIRE_KEY_FOR_READS and a read key."""
    with keyed_lite_server(tmp_path_factory.mktemp("browser-read-keys"), "read", require_key_for_reads=True) as served:
        yield served


def test_chat_page_asks_for_a_key_when_reads_need_one_and_downloads_with_it(page, read_keyed_server):
    """With QA_REQUIRE_KEY_FOR_READS a refused question only showed its error (the key box stayed shut), the
    document list stayed refused after a key was set, and "Download the original file" (a plain link: no key)
    saved the 401's JSON instead of the file."""
    url, key, s = read_keyed_server
    page.goto(url + "/")
    page.locator("#service-status", has_text="Ready").wait_for()
    assert "read access" in ask(page, KZ_QUESTION).inner_text()
    page.locator("#key-status", has_text="needs a key for questions").wait_for()
    assert page.evaluate("document.getElementById('key-box').open") is True
    page.click("#doc-list > summary")
    page.locator("#doc-list-items li", has_text="Could not list").wait_for()
    page.fill("#api-key", key)
    page.press("#api-key", "Enter")
    item = page.locator("#doc-list-items li", has_text=UNSAFE_NAME)
    item.wait_for()  # listed again once the key is set
    item.locator("button.link").first.click()
    page.locator("#source-info", has_text="Whole document").wait_for()
    with page.expect_download() as download:
        page.click("#source-original")
    assert download.value.suggested_filename == UNSAFE_NAME
    assert Path(download.value.path()).read_bytes() == (s.corpus_dir / UNSAFE_NAME).read_bytes()
    assert "Answer" in ask(page, KZ_QUESTION).inner_text()
    assert page.errors == []


def test_chat_page_asks_for_a_key_to_delete_and_restores_from_the_trash(page, keyed_server):
    url, key, s = keyed_server
    page.goto(url + "/")
    page.locator("#service-status", has_text="Ready").wait_for()
    page.click("#doc-list > summary")
    item = page.locator("#doc-list-items li", has_text=UNSAFE_NAME)
    item.wait_for()
    item.locator(".doc-action", has_text="Delete").click()
    # the server needs keys (/ready says so): the page asks for one first, and sends nothing
    page.locator("#key-status", has_text="needs a write key").wait_for()
    assert page.evaluate("document.getElementById('key-box').open") is True
    assert page.evaluate("document.activeElement.id") == "api-key"
    assert (s.corpus_dir / UNSAFE_NAME).exists()
    # a wrong key is refused by the server: the box says why
    page.fill("#api-key", "qa_wrong-key")
    page.press("#api-key", "Enter")
    item.locator(".doc-action", has_text="Delete").click()
    page.locator("#key-status", has_text="not valid").wait_for()
    assert (s.corpus_dir / UNSAFE_NAME).exists()
    # not a key at all (no HTTP header can carry it): refused by the page, the stored key unchanged
    page.fill("#api-key", "clé–ключ")
    page.press("#api-key", "Enter")
    page.locator("#key-status", has_text="Not a key").wait_for()
    assert page.evaluate("sessionStorage.getItem('qa-api-key')") == "qa_wrong-key"
    page.fill("#api-key", key)
    page.press("#api-key", "Enter")
    page.locator("#key-status", has_text="Key set").wait_for()
    item.locator(".doc-action", has_text="Delete").click()
    page.locator("#trash-items li", has_text=UNSAFE_NAME).wait_for()
    assert not (s.corpus_dir / UNSAFE_NAME).exists()
    assert page.locator("#doc-list-items li", has_text=UNSAFE_NAME).count() == 0
    page.locator("#trash-items li", has_text=UNSAFE_NAME).locator(".doc-action").click()
    page.locator("#doc-list-items li", has_text=UNSAFE_NAME).wait_for()
    assert (s.corpus_dir / UNSAFE_NAME).read_text(encoding="utf-8") == UNSAFE_TEXT  # the same bytes
    assert page.evaluate("sessionStorage.getItem('qa-api-key')") == key
    assert page.errors == []


def test_chat_page_restores_the_version_clicked_and_keeps_its_status_lines_true(page, keyed_server):
    """Each trash row's Restore brings back that version (it brought back the newest one whichever row was
    clicked); a delete is reported in the documents' status line and the header's count follows it (the header
    said "Deleted …" for ever); an open source panel says its document was deleted."""
    url, key, s = keyed_server
    name = "zz_versions.txt"
    v1, v2 = b"The Quillon lighthouse keeps its first lamp.\n", b"DRAFT v2: a different lamp entirely.\n"

    def api(method, path, data=None, ctype="text/plain"):
        req = urllib.request.Request(url + path, data=data, method=method, headers={"Authorization": f"Bearer {key}"})
        if data is not None and method == "POST":
            boundary = "zzboundary"
            req.data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                        f"Content-Type: {ctype}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
            req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)

    api("POST", "/documents", v1)
    first = api("DELETE", f"/documents/{name}")["trash_entry"]
    api("POST", "/documents", v2)

    page.goto(url + "/")
    page.locator("#service-status", has_text="Ready").wait_for()
    page.evaluate("key => sessionStorage.setItem('qa-api-key', key)", key)
    page.click("#doc-list > summary")
    item = page.locator(f'#doc-list-items li[data-doc="{name}"]')
    item.locator("button.link").first.click()  # open it in the source panel
    page.locator("#source-info", has_text="Whole document").wait_for()
    item.locator(".doc-action", has_text="Delete").click()
    page.locator("#upload-status.ok", has_text=f"Deleted {name}").wait_for()
    page.locator("#source-info", has_text="was deleted").wait_for()
    n = len(get_json(f"{url}/documents")["documents"])
    page.locator("#service-status", has_text=f"Ready · {n} documents").wait_for()

    rows = page.locator("#trash-items li", has_text=name)
    rows.nth(1).wait_for()
    assert rows.count() == 2
    older = page.locator(f'#trash-items li[data-entry="{first}"]')
    assert "Restore " + name + " as it was when deleted" in older.locator(".doc-action").get_attribute("aria-label")
    older.locator(".doc-action").click()
    page.locator("#upload-status.ok", has_text=f"Restored {name}").wait_for()
    page.locator(f'#doc-list-items li[data-doc="{name}"]').wait_for()
    assert (s.corpus_dir / name).read_bytes() == v1  # the version clicked, not the newest (v2)
    assert [t["id"] for t in get_json(f"{url}/trash")["entries"]].count(name) == 1  # v2 is still in the trash
    page.locator("#service-status", has_text=f"Ready · {n + 1} documents").wait_for()
    # uploading over a taken name: the page's way out, not the API's ("replace it with PUT … If-Match")
    status = upload_from_page(page, name, v2, "text/plain")
    assert status == (f"Not added: a document named '{name}' already exists: delete it first (it goes to the trash), "
                      "then add the new version"), status
    assert (s.corpus_dir / name).read_bytes() == v1
    assert page.errors == []


def test_chat_page_uploads_with_the_key_and_follows_a_202_job(page, keyed_server):
    """The upload form on a server with keys: it asks for a key first (nothing sent), a wrong key is
    refused and the key box says why, with the key a PDF is added through the real write path
    (page chips, the original kept), and an upload over async_upload_bytes (202) is followed to the
    end of its job."""
    from docgen import make_pdf

    url, key, s = keyed_server
    page.goto(url + "/")
    page.locator("#service-status", has_text="Ready").wait_for()
    page.evaluate("sessionStorage.removeItem('qa-api-key')")
    pdf = make_pdf(HARBOUR_PAGES)
    page.set_input_files("#file-input", files=[{"name": "keyed.pdf", "mimeType": "application/pdf", "buffer": pdf}])
    page.locator("#key-status", has_text="needs a write key for uploads").wait_for()
    assert not (s.corpus_dir / "keyed.pdf").exists()
    page.fill("#api-key", "qa_wrong-key")
    page.press("#api-key", "Enter")
    status = upload_from_page(page, "keyed.pdf", pdf, "application/pdf")
    assert status.startswith("Not added:") and "not valid" in status, status
    page.locator("#key-status", has_text="not valid").wait_for()
    assert not (s.corpus_dir / "keyed.pdf").exists()
    # a key the browser cannot send (set behind the page's back): refused in the page, which does not stay
    # "uploading" (the next upload below goes through)
    page.evaluate("sessionStorage.setItem('qa-api-key', 'clé–ключ')")
    status = upload_from_page(page, "keyed.pdf", pdf, "application/pdf")
    assert status.startswith("Not added:"), status
    assert not (s.corpus_dir / "keyed.pdf").exists()

    page.fill("#api-key", key)
    page.press("#api-key", "Enter")
    status = upload_from_page(page, "keyed.pdf", pdf, "application/pdf")
    assert status == "Added keyed.pdf (4 pages). You can ask about it now.", status
    assert (s.corpus_dir / "keyed.pdf").read_bytes() == pdf  # the original is kept
    page.locator('#doc-list-items li[data-doc="keyed.pdf"]', has_text="PDF, 4 pages").wait_for()
    # indexed as its extracted text with page starts (asking it is covered by tests/test_writes.py)
    served = get_json(f"{url}/documents/keyed.pdf")
    at = served["text"].index("Quillon lighthouse")
    assert len(served["page_starts"]) == 4 and served["page_starts"][2] <= at < served["page_starts"][3]

    big = ("The Varna ferry carries bicycles free of charge on Sundays. " * 5000).encode()
    assert len(big) > s.async_upload_bytes
    status = upload_from_page(page, "big.txt", big, "text/plain")
    assert status.startswith("Added big.txt"), status
    assert (s.corpus_dir / "big.txt").read_bytes() == big
    assert page.errors == []


# --------------------------------------------------------------------------- the real server




@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-real")
    corpus = make_corpus(tmp)
    port = free_port()
    env = {
        **os.environ,
        "QA_CORPUS_DIR": str(corpus),
        "QA_INDEX_DIR": str(tmp / "index"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(tmp / "server.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900  # first run builds the index; the machine may be busy
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"qa serve exited with {proc.returncode}:\n{log.read()[-4000:]}")
            try:
                with urllib.request.urlopen(url + "/ready", timeout=5) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError as e:
                body = json.load(e)
                if body.get("status") == "failed":
                    pytest.fail(f"server not ready: {body.get('reason')}")
            except OSError:
                pass
            assert time.monotonic() < deadline, "qa serve did not become ready"
            time.sleep(1)
        log.seek(0)
        assert url in log.read(), "qa serve should print its URL"
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.mark.slow
def test_real_server_end_to_end(page, real_server):
    page.goto(real_server + "/")
    page.locator("#service-status", has_text="Ready").wait_for(timeout=60_000)

    reply = ask(page, KZ_QUESTION)
    answer = reply.locator(".answer-text").first.inner_text()
    assert "January 2" in answer or "2 January" in answer, answer
    chip = reply.locator(".chip").first
    doc = chip.get_attribute("data-doc")
    start, end = int(chip.get_attribute("data-start")), int(chip.get_attribute("data-end"))
    assert get_json(f"{real_server}/documents/{doc}")["text"][start:end] == answer
    open_chip(page, chip)
    assert page.locator("#source-text mark").inner_text() == answer
    assert mark_is_visible_in_panel(page)
    screenshot(page, "real-kazakhstan")

    # The document with <script> text and emoji before the fact: opened, shown as text, inert.
    reply = ask(page, GLIMMER_QUESTION)
    answer = reply.locator(".answer-text").first.inner_text()
    assert "1987" in answer, answer
    chip = reply.locator(f'.chip[data-doc="{UNSAFE_NAME}"]').first
    open_chip(page, chip, via_keyboard=True)
    assert page.locator("#source-text mark").inner_text() == answer
    assert "<script>window.__pwned=1</script>" in page.locator("#source-text").inner_text()
    assert page.locator("#source-text script, #source-text img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    screenshot(page, "real-unsafe-document")
    assert page.errors == []


@pytest.mark.slow
def test_real_server_pdf_upload_from_the_page(page, real_server):
    """The trained reader: upload a 4-page PDF from the page, ask about page 3, see p. 3 and the highlight."""
    from docgen import make_pdf

    name = "harbour.pdf"
    page.goto(real_server + "/")
    page.locator("#service-status", has_text="Ready").wait_for(timeout=60_000)
    status = upload_from_page(page, name, make_pdf(HARBOUR_PAGES), "application/pdf")
    assert status.startswith(f"Added {name} (4 pages)"), status
    reply = ask(page, QUILLON_QUESTION)
    answer = reply.locator(".answer-text").first.inner_text()
    assert "Okonkwo" in answer, answer
    chip = reply.locator(f'.chip[data-doc="{name}"]').first
    assert chip.get_attribute("data-page") == "3" and " · p. 3 · " in chip.inner_text()
    start, end = int(chip.get_attribute("data-start")), int(chip.get_attribute("data-end"))
    assert get_json(f"{real_server}/documents/{name}")["text"][start:end] == answer
    open_chip(page, chip)
    assert page.locator("#source-text mark").inner_text() == answer
    assert page.locator("#source-info").inner_text().startswith("Page 3")
    assert mark_is_visible_in_panel(page)
    screenshot(page, "real-pdf-page-3")
    assert page.errors == []
