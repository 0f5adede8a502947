// Chat page of the Document QA service. No framework, no build step.
// Everything from the server (answers, documents) is inserted as TEXT (textContent /
// createTextNode), never as HTML. Offsets from the API are Python code-point offsets;
// cpToUtf16() converts them to JavaScript (UTF-16) string indices.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const transcript = $("transcript");
  const form = $("ask-form");
  const input = $("question");
  const sendButton = $("send");
  const serviceStatus = $("service-status");
  const panel = $("source-panel");
  const sourceTitle = $("source-title");
  const sourceInfo = $("source-info");
  const sourceText = $("source-text");
  const closeButton = $("source-close");
  const docList = $("doc-list");
  const docListItems = $("doc-list-items");

  let busy = false;
  let writesNeed = "open"; // from /ready: "open", "key" or "read_only"
  let openRequest = 0; // latest source-panel request; older responses are dropped
  let lastOpener = null; // element to give focus back to when the panel closes

  // ---------------------------------------------------------------- helpers

  /** UTF-16 index of the code point at code-point offset `cp` (Python offsets -> JS). */
  function cpToUtf16(text, cp) {
    let i = 0;
    for (let n = 0; n < cp && i < text.length; n++) {
      const c = text.charCodeAt(i);
      const isPair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length &&
        (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      i += isPair ? 2 : 1;
    }
    return i;
  }

  /** [before, middle, after] of `text` split at code-point offsets start/end. */
  function splitAt(text, start, end) {
    const a = cpToUtf16(text, start);
    const b = cpToUtf16(text, Math.max(start, end));
    return [text.slice(0, a), text.slice(a, b), text.slice(b)];
  }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = v;
        else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v);
      }
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function percent(score) {
    const p = Math.round(Math.max(0, Math.min(1, Number(score) || 0)) * 100);
    return p + "%";
  }

  function docUrl(docId) {
    return "/documents/" + docId.split("/").map(encodeURIComponent).join("/");
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && typeof body.message === "string") return body.message;
      if (body && typeof body.reason === "string") return body.reason;
    } catch (e) { /* not JSON */ }
    return "the server answered " + response.status + " " + response.statusText;
  }

  function addMessage(node) {
    transcript.append(node);
    node.scrollIntoView({ block: "nearest" });
    return node;
  }

  // ---------------------------------------------------------------- citations

  function chip(docId, start, end, label) {
    const text = docId + " · " + start + "–" + end;
    const button = el("button", {
      type: "button",
      class: "chip",
      "data-doc": docId,
      "data-start": String(start),
      "data-end": String(end),
      "aria-label": (label || "Open source") + ": " + docId + ", characters " + start + " to " + end,
      title: "Show in the document",
      text: text,
    });
    // A <button> is activated by click, Enter and Space alike.
    button.addEventListener("click", () => openSource(docId, start, end, button));
    return button;
  }

  function contextWithMark(item) {
    // The answer inside its surrounding sentence(s), the answer marked.
    const ctx = typeof item.context === "string" ? item.context : "";
    const rs = item.start - item.context_start;
    const re = item.end - item.context_start;
    if (!ctx || !(rs >= 0 && re >= rs)) return null;
    const [before, middle, after] = splitAt(ctx, rs, re);
    return el("blockquote", { class: "context" }, before, el("mark", { text: middle }), after);
  }

  // ---------------------------------------------------------------- rendering answers

  function renderAnswer(result) {
    const li = el("li", { class: "msg bot" });
    const answers = Array.isArray(result.answers) ? result.answers : [];
    if (result.answer_found && answers.length) {
      const best = answers[0];
      li.append(
        el("p", { class: "answer-line" },
          el("span", { class: "visually-hidden", text: "Answer: " }),
          el("strong", { class: "answer-text", text: best.text }),
          " ",
          el("span", { class: "confidence", title: "reader confidence", text: "confidence " + percent(best.score) })),
      );
      const ctx = contextWithMark(best);
      if (ctx) li.append(ctx);
      li.append(citationList(best.citations && best.citations.length ? best.citations : [best]));
      if (answers.length > 1) {
        const more = el("details", { class: "more-answers" },
          el("summary", { text: "Other possible answers (" + (answers.length - 1) + ")" }));
        const list = el("ol");
        for (const a of answers.slice(1)) {
          list.append(el("li", null,
            el("span", { class: "answer-text", text: a.text }), " ",
            el("span", { class: "confidence", text: percent(a.score) }),
            citationList(a.citations && a.citations.length ? a.citations : [a])));
        }
        more.append(list);
        li.append(more);
      }
    } else {
      li.classList.add("no-answer");
      li.append(el("p", { class: "answer-line" },
        el("strong", { text: "No answer found in the documents." })));
      const passages = Array.isArray(result.passages) ? result.passages : [];
      if (passages.length) {
        li.append(el("p", { class: "passages-intro", text: "Closest passages:" }));
        const list = el("ol", { class: "passages" });
        for (const p of passages) {
          const snippet = p.text.length > 240 ? p.text.slice(0, 240) + "…" : p.text;
          list.append(el("li", null, chip(p.document, p.start, p.end, "Open passage"),
            el("p", { class: "snippet", text: snippet })));
        }
        li.append(list);
      }
    }
    addMessage(li);
  }

  function citationList(citations) {
    const wrap = el("div", { class: "citations" }, el("span", { class: "citations-label", text: "Sources: " }));
    for (const c of citations) wrap.append(chip(c.document, c.start, c.end, "Open citation"), " ");
    return wrap;
  }

  function renderError(message) {
    addMessage(el("li", { class: "msg error", role: "alert" },
      el("strong", { text: "Error: " }), message));
  }

  // ---------------------------------------------------------------- asking

  function setBusy(on) {
    busy = on;
    sendButton.disabled = on;
    transcript.setAttribute("aria-busy", on ? "true" : "false");
  }

  async function ask(question) {
    addMessage(el("li", { class: "msg user" },
      el("span", { class: "visually-hidden", text: "You asked: " }), question));
    setBusy(true);
    const pending = addMessage(el("li", { class: "msg bot pending", "aria-label": "Searching the documents" },
      el("span", { class: "spinner", "aria-hidden": "true" }), " Searching the documents…"));
    try {
      let response;
      try {
        response = await fetch("/ask", {
          method: "POST",
          headers: Object.assign({ "Content-Type": "application/json", Accept: "application/json" }, authHeaders()),
          body: JSON.stringify({ question: question }),
        });
      } catch (e) {
        throw new Error("could not reach the server (" + e.message + ")");
      }
      if (!response.ok) throw new Error(await errorText(response));
      renderAnswer(await response.json());
    } catch (e) {
      renderError(e.message);
    } finally {
      pending.remove();
      setBusy(false);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || busy) return;
    input.value = "";
    ask(question).then(() => input.focus());
  });

  // ---------------------------------------------------------------- source panel

  async function openSource(docId, start, end, opener) {
    const token = ++openRequest;
    lastOpener = opener || null;
    panel.hidden = false;
    document.body.classList.add("panel-open");
    sourceTitle.textContent = docId;
    sourceInfo.textContent = "Loading…";
    let text;
    try {
      const response = await fetch(docUrl(docId), { headers: Object.assign({ Accept: "application/json" }, authHeaders()) });
      if (!response.ok) throw new Error(await errorText(response));
      text = (await response.json()).text;
    } catch (e) {
      if (token !== openRequest) return;
      sourceInfo.textContent = "Could not load the document: " + e.message;
      sourceText.replaceChildren();
      return;
    }
    if (token !== openRequest) return;
    sourceText.replaceChildren();
    if (start == null) {
      sourceInfo.textContent = "Whole document";
      sourceText.append(document.createTextNode(text));
      sourceText.scrollTop = 0;
    } else {
      const [before, middle, after] = splitAt(text, start, end);
      const mark = el("mark", { id: "source-mark", text: middle });
      sourceText.append(document.createTextNode(before), mark, document.createTextNode(after));
      sourceInfo.textContent = "Characters " + start + "–" + end + " highlighted";
      mark.scrollIntoView({ block: "center" });
    }
    sourceTitle.focus({ preventScroll: true });
  }

  function closeSource() {
    panel.hidden = true;
    document.body.classList.remove("panel-open");
    openRequest++;
    if (lastOpener && document.contains(lastOpener)) lastOpener.focus();
    else input.focus();
  }

  closeButton.addEventListener("click", closeSource);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeSource();
  });

  // ---------------------------------------------------------------- service status, documents

  async function checkReady() {
    try {
      const response = await fetch("/ready", { headers: { Accept: "application/json" } });
      const body = await response.json();
      if (response.ok && body.ready) {
        writesNeed = body.writes || "open";
        serviceStatus.textContent = "Ready · " + body.documents + " documents";
        serviceStatus.className = "service-status ok";
        return;
      }
      serviceStatus.textContent = "Not ready: " + (body.reason || body.status);
      serviceStatus.className = "service-status bad";
    } catch (e) {
      serviceStatus.textContent = "Cannot reach the server";
      serviceStatus.className = "service-status bad";
    }
    setTimeout(checkReady, 3000);
  }

  // ---------------------------------------------------------------- API key, delete, restore
  // The key lives in sessionStorage (this tab only) and goes out as "Authorization: Bearer".
  // A write answered 401/403 opens the key box and asks for a (write) key.

  const keyBox = $("key-box");
  const keyForm = $("key-form");
  const keyInput = $("api-key");
  const keyStatus = $("key-status");
  const trashItems = $("trash-items");

  function authHeaders() {
    const key = sessionStorage.getItem("qa-api-key");
    return key ? { Authorization: "Bearer " + key } : {};
  }

  function askForKey(message) {
    keyBox.open = true;
    keyStatus.textContent = message;
    keyInput.focus();
  }

  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    if (key) sessionStorage.setItem("qa-api-key", key);
    else sessionStorage.removeItem("qa-api-key");
    keyInput.value = "";
    keyStatus.textContent = key ? "Key set for this tab." : "Key removed.";
  });

  /** fetch() for writes: sends the key; on 401/403 asks for one. Returns the response. */
  async function writeFetch(url, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = Object.assign({ Accept: "application/json" }, opts.headers || {}, authHeaders());
    const response = await fetch(url, opts);
    if (response.status === 401 || response.status === 403) {
      const message = await errorText(response.clone());
      askForKey(message + " — enter a write key, then try again.");
    }
    return response;
  }
  window.qaWriteFetch = writeFetch; // for other parts of the page (e.g. an upload form)

  async function loadDocuments() {
    docListItems.replaceChildren(el("li", { text: "Loading…" }));
    try {
      const response = await fetch("/documents", { headers: authHeaders() });
      if (!response.ok) throw new Error(await errorText(response));
      const body = await response.json();
      docListItems.replaceChildren();
      for (const d of body.documents) {
        const b = el("button", { type: "button", class: "link", text: d.id });
        b.addEventListener("click", () => openSource(d.id, null, null, b));
        const del = el("button", { type: "button", class: "link doc-action", text: "Delete",
          "aria-label": "Delete " + d.id + " (it goes to the trash)" });
        del.addEventListener("click", () => changeDocument("DELETE", docUrl(d.id), "Deleted " + d.id));
        docListItems.append(el("li", null, b, del));
      }
    } catch (e) {
      docListItems.replaceChildren(el("li", { text: "Could not list the documents: " + e.message }));
    }
    try {
      const response = await fetch("/trash", { headers: authHeaders() });
      if (!response.ok) throw new Error(await errorText(response));
      const body = await response.json();
      trashItems.replaceChildren();
      if (!body.entries.length) trashItems.append(el("li", { text: "Empty." }));
      for (const t of body.entries) {
        const restore = el("button", { type: "button", class: "link doc-action", text: "Restore",
          "aria-label": "Restore " + t.id });
        restore.addEventListener("click", () =>
          changeDocument("POST", docUrl(t.id) + "/restore", "Restored " + t.id));
        trashItems.append(el("li", null, t.id + " (" + t.reason + " " + t.deleted_at + ")", restore));
      }
    } catch (e) {
      trashItems.replaceChildren(el("li", { text: "Could not list the trash: " + e.message }));
    }
  }

  async function changeDocument(method, url, done) {
    if (writesNeed === "key" && !sessionStorage.getItem("qa-api-key")) {
      askForKey("This server needs a write key for deletes and restores.");
      return;
    }
    const response = await writeFetch(url, { method: method });
    if (response.ok) {
      serviceStatus.textContent = done;
      await loadDocuments();
    } else if (response.status !== 401 && response.status !== 403) {
      renderError(await errorText(response));
    }
  }

  docList.addEventListener("toggle", () => {
    if (docList.open) loadDocuments();
  });

  checkReady();
  input.focus();
})();
