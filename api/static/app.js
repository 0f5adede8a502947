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
  const docCount = $("doc-count");
  const dropZone = $("drop-zone");
  const fileInput = $("file-input");
  const uploadProgress = $("upload-progress");
  const uploadStatus = $("upload-status");
  const sourceOriginal = $("source-original");

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

  /** The first `n` code points of `text` (+ "…" when cut): never half of an emoji's surrogate pair. */
  function shorten(text, n) {
    const points = Array.from(text);
    return points.length > n ? points.slice(0, n).join("") + "…" : text;
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

  // The score is the calibrated probability that the answer is right (docs/confidence.md); said in words too.
  function confidenceWords(score) {
    const p = Number(score) || 0;
    if (p >= 0.8) return "very likely right";
    if (p >= 0.6) return "likely right";
    if (p >= 0.4) return "uncertain";
    // not "probably wrong": the server answers from QA_MIN_CONFIDENCE (about 0.25), and an answer it gives
    // must not be shown as the answer and called wrong in the same line
    return "low confidence, check the source";
  }

  function confidenceLabel(score) {
    return confidenceWords(score) + " (" + percent(score) + ")";
  }

  function docUrl(docId) {
    return "/documents/" + docId.split("/").map(encodeURIComponent).join("/");
  }

  /** The server's message; with `askKey`, a 401 (reads need a key: QA_REQUIRE_KEY_FOR_READS) also opens the key box. */
  async function errorText(response, askKey) {
    let message = "the server answered " + response.status + " " + response.statusText;
    try {
      const body = await response.json();
      if (body && typeof body.message === "string") message = body.message;
      else if (body && typeof body.reason === "string") message = body.reason;
    } catch (e) { /* not JSON */ }
    if (askKey && response.status === 401) keyRefused(message);
    return message;
  }

  function addMessage(node) {
    transcript.append(node);
    node.scrollIntoView({ block: "nearest" });
    return node;
  }

  // ---------------------------------------------------------------- citations

  function chip(docId, start, end, label, page, cited) {
    const hasPage = Number.isInteger(page);
    const text = docId + (hasPage ? " · p. " + page : "") + " · " + start + "–" + end;
    const button = el("button", {
      type: "button",
      class: "chip",
      "data-doc": docId,
      "data-start": String(start),
      "data-end": String(end),
      "aria-label": (label || "Open source") + ": " + docId + (hasPage ? ", page " + page : "") +
        ", characters " + start + " to " + end,
      title: "Show in the document",
      text: text,
    });
    if (hasPage) button.setAttribute("data-page", String(page));
    // A <button> is activated by click, Enter and Space alike.
    button.addEventListener("click", () => openSource(docId, start, end, button, hasPage ? page : null, cited));
    return button;
  }

  function contextWithMark(item) {
    // A citation's answer inside its surrounding sentence(s), the answer marked.
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
          el("span", { class: "confidence", title: "estimated probability that this answer is right",
                       text: confidenceLabel(best.score) })),
      );
      const citations = Array.isArray(best.citations) ? best.citations : [];
      // The answer is shown where its first (best) citation stands.
      const ctx = citations.length ? contextWithMark(citations[0]) : null;
      if (ctx) li.append(ctx);
      li.append(citationList(citations));
      if (answers.length > 1) {
        const more = el("details", { class: "more-answers" },
          el("summary", { text: "Other possible answers (" + (answers.length - 1) + ")" }));
        const list = el("ol");
        for (const a of answers.slice(1)) {
          list.append(el("li", null,
            el("span", { class: "answer-text", text: a.text }), " ",
            el("span", { class: "confidence", text: confidenceLabel(a.score) }),
            citationList(Array.isArray(a.citations) ? a.citations : [])));
        }
        more.append(list);
        li.append(more);
      }
    } else {
      li.classList.add("no-answer");
      const passages = Array.isArray(result.passages) ? result.passages : [];
      li.append(el("p", { class: "answer-line" },
        el("strong", { text: "Not found in the documents" }),
        passages.length ? " — closest passages below." : "."));
      const guess = result.best_guess;
      const where = guess && Array.isArray(guess.citations) ? guess.citations[0] : null;
      if (guess && typeof guess.text === "string") {
        li.append(el("p", { class: "best-guess" },
          "Best guess, not trusted: ",
          el("span", { class: "answer-text", text: guess.text }), " ",
          el("span", { class: "confidence", title: "estimated probability that this guess is right",
                       text: confidenceLabel(guess.score) }), " ",
          where ? chip(where.document, where.start, where.end, "Open best guess", where.page, where.text) : ""));
      }
      if (passages.length) {
        li.append(el("p", { class: "passages-intro", text: "Closest passages:" }));
        const list = el("ol", { class: "passages" });
        for (const p of passages) {
          list.append(el("li", null, chip(p.document, p.start, p.end, "Open passage", null, p.text),
            el("p", { class: "snippet", text: shorten(p.text, 240) })));
        }
        li.append(list);
      }
    }
    const shown = Array.isArray(result.passages) ? result.passages.length : 0;
    const read = result.passages_read;
    if (Number.isInteger(read) && read > 0 && read < shown) {
      // the cascade answered from the best passage(s): QA_BUSY_FIRST_PASSAGES (server busy) or the opt-in early exit
      li.append(el("p", { class: "read-note",
        text: "Read the best " + read + " of " + shown + " passages (the server was busy, or they were conclusive)." }));
    }
    addMessage(li);
  }

  function citationList(citations) {
    const wrap = el("div", { class: "citations" }, el("span", { class: "citations-label", text: "Sources: " }));
    for (const c of citations) wrap.append(chip(c.document, c.start, c.end, "Open citation", c.page, c.text), " ");
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
      if (!response.ok) {
        const refused = new Error(await errorText(response));
        refused.status = response.status;
        if (response.status === 401) keyRefused(refused.message);
        throw refused;
      }
      renderAnswer(await response.json());
    } catch (e) {
      renderError(e.message);
      // a refused question (e.g. too long) goes back into the box to be shortened, not retyped
      if (e.status === 422 && !input.value) input.value = question;
      checkReady(); // the server may be down or restarting: the header must not go on saying "Ready"
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
    ask(question).then(() => {
      const at = document.activeElement;
      if (!at || at === document.body || at === input || at === sendButton) input.focus();
    });
  });

  // ---------------------------------------------------------------- source panel

  async function openSource(docId, start, end, opener, page, cited) {
    const token = ++openRequest;
    lastOpener = opener || null;
    panel.hidden = false;
    document.body.classList.add("panel-open");
    sourceTitle.textContent = docId;
    sourceInfo.textContent = "Loading…";
    sourceInfo.classList.remove("stale");
    sourceOriginal.href = docUrl(docId) + "?original=true";
    sourceOriginal.dataset.name = docId.split("/").pop();
    sourceOriginal.hidden = false;
    let text;
    try {
      const response = await fetch(docUrl(docId), { headers: Object.assign({ Accept: "application/json" }, authHeaders()) });
      if (!response.ok) throw new Error(await errorText(response, true));
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
      sourceInfo.textContent = isConverted(docId) ? "Whole document (the text extracted from the file)" : "Whole document";
      sourceText.append(document.createTextNode(text));
      sourceText.scrollTop = 0;
    } else {
      const [before, middle, after] = splitAt(text, start, end);
      if (typeof cited === "string" && middle !== cited) {
        // replaced (or deleted and uploaded again) since this answer: its offsets point at other text now
        sourceInfo.textContent = "This document has changed since this answer: characters " + start + "–" + end +
          " no longer hold the cited text. Ask again for an answer from its current version.";
        sourceInfo.classList.add("stale");
        sourceText.append(document.createTextNode(text));
        sourceText.scrollTop = 0;
        sourceTitle.focus({ preventScroll: true });
        return;
      }
      const mark = el("mark", { id: "source-mark", text: middle });
      sourceText.append(document.createTextNode(before), mark, document.createTextNode(after));
      let info = (page ? "Page " + page + " · characters " : "Characters ") + start + "–" + end + " highlighted";
      if (isConverted(docId)) info += " in the text extracted from the file";
      sourceInfo.textContent = info;
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

  let readyTimer = null;

  async function checkReady() {
    clearTimeout(readyTimer);
    readyTimer = null;
    try {
      const response = await fetch("/ready", { headers: { Accept: "application/json" } });
      const body = await response.json();
      if (response.ok && body.ready) {
        writesNeed = body.writes || "open";
        serviceStatus.textContent = "Ready · " + body.documents + " documents";
        serviceStatus.className = "service-status ok";
        readyTimer = setTimeout(checkReady, 15000);
        return;
      }
      serviceStatus.textContent = "Not ready: " + (body.reason || body.status);
      serviceStatus.className = "service-status bad";
    } catch (e) {
      serviceStatus.textContent = "Cannot reach the server";
      serviceStatus.className = "service-status bad";
    }
    readyTimer = setTimeout(checkReady, 3000);
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

  /** A read refused for want of a (valid) key: the server protects reads too. */
  function keyRefused(message) {
    askForKey(message + " — this server needs a key for questions and documents too: enter one, then try again.");
  }

  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    if (/[^\x21-\x7e]/.test(key)) {
      // keys are printable ASCII (`qa keys add`); anything else cannot go into an HTTP header, and every
      // request would fail in the browser before reaching the server
      keyStatus.textContent = "Not a key: keys are letters, digits and punctuation without spaces (check that it was copied whole).";
      return;
    }
    if (key) sessionStorage.setItem("qa-api-key", key);
    else sessionStorage.removeItem("qa-api-key");
    keyInput.value = "";
    keyStatus.textContent = key ? "Key set for this tab." : "Key removed.";
    if (docList.open) refreshDocuments(); // it may have been refused for want of this key
  });

  // The original file: a plain link cannot send the key, so with a key set it is fetched with it and saved
  // from memory (a server that protects reads answered the link 401, and the browser saved that error).
  sourceOriginal.addEventListener("click", async (event) => {
    if (!sessionStorage.getItem("qa-api-key")) return;
    event.preventDefault();
    let response;
    try {
      response = await fetch(sourceOriginal.href, { headers: authHeaders() });
      if (!response.ok) throw new Error(await errorText(response, true));
    } catch (e) {
      sourceInfo.textContent = "Could not download the original file: " + e.message;
      return;
    }
    const saved = el("a", { href: URL.createObjectURL(await response.blob()), download: sourceOriginal.dataset.name });
    document.body.append(saved);
    saved.click();
    saved.remove();
    setTimeout(() => URL.revokeObjectURL(saved.href), 60000);
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

  function isConverted(docId) {
    return /\.(pdf|docx|html?)$/i.test(docId);
  }

  async function refreshDocuments() {
    if (!docListItems.children.length) docListItems.replaceChildren(el("li", { text: "Loading…" }));
    try {
      const response = await fetch("/documents", { headers: Object.assign({ Accept: "application/json" }, authHeaders()) });
      if (!response.ok) throw new Error(await errorText(response, true));
      const body = await response.json();
      docListItems.replaceChildren();
      docCount.textContent = "(" + body.documents.length + ")";
      for (const d of body.documents) {
        const b = el("button", { type: "button", class: "link", text: d.id });
        b.addEventListener("click", () => openSource(d.id, null, null, b));
        const kind = d.pages ? "PDF, " + d.pages + (d.pages === 1 ? " page" : " pages")
          : (d.converter && d.converter !== "text" ? d.converter.toUpperCase() : "");
        const del = el("button", { type: "button", class: "link doc-action", text: "Delete",
          "aria-label": "Delete " + d.id + " (it goes to the trash)" });
        del.addEventListener("click", () =>
          changeDocument("DELETE", docUrl(d.id), "Deleted " + d.id + " (it is in the trash).", d.id));
        docListItems.append(el("li", { "data-doc": d.id }, b,
          kind ? el("span", { class: "doc-kind", text: " " + kind }) : null, del));
      }
    } catch (e) {
      docListItems.replaceChildren(el("li", { text: "Could not list the documents: " + e.message }));
    }
    try {
      const response = await fetch("/trash", { headers: authHeaders() });
      if (!response.ok) throw new Error(await errorText(response, true));
      const body = await response.json();
      trashItems.replaceChildren();
      if (!body.entries.length) trashItems.append(el("li", { text: "Empty." }));
      for (const t of body.entries) {
        const when = t.reason + " " + t.deleted_at;
        const restore = el("button", { type: "button", class: "link doc-action", text: "Restore",
          "aria-label": "Restore " + t.id + " as it was when " + when });
        restore.addEventListener("click", () =>
          changeDocument("POST", docUrl(t.id) + "/restore?entry=" + encodeURIComponent(t.entry),
            "Restored " + t.id + " as it was when " + when + ".", t.id));
        trashItems.append(el("li", { "data-entry": t.entry }, t.id + " (" + when + ")", restore));
      }
    } catch (e) {
      trashItems.replaceChildren(el("li", { text: "Could not list the trash: " + e.message }));
    }
  }

  async function changeDocument(method, url, done, docId) {
    if (writesNeed === "key" && !sessionStorage.getItem("qa-api-key")) {
      askForKey("This server needs a write key for deletes and restores.");
      return;
    }
    let response;
    try {
      response = await writeFetch(url, { method: method });
    } catch (e) {
      renderError("could not reach the server (" + e.message + ")");
      return;
    }
    if (response.ok) {
      setUploadStatus(done, "ok");
      if (method === "DELETE" && !panel.hidden && sourceTitle.textContent === docId) {
        sourceInfo.textContent = "This document was deleted (it is in the trash).";
        sourceText.replaceChildren();
        sourceOriginal.hidden = true;
      }
      checkReady(); // the header's document count
      await refreshDocuments();
    } else if (response.status !== 401 && response.status !== 403) {
      renderError(await errorText(response));
    }
  }

  docList.addEventListener("toggle", () => {
    if (docList.open) refreshDocuments();
  });

  // ---------------------------------------------------------------- uploads

  let uploading = false;

  function setUploadStatus(text, kind) {
    uploadStatus.textContent = text;
    uploadStatus.className = "upload-status" + (kind ? " " + kind : "");
    if (kind === "bad") uploadStatus.setAttribute("role", "alert");
    else uploadStatus.setAttribute("role", "status");
  }

  function uploaded(body) {
    const added = body.documents.map((d) => d.id + (d.pages ? " (" + d.pages + (d.pages === 1 ? " page)" : " pages)") : ""));
    setUploadStatus("Added " + added.join(", ") + ". You can ask about it now.", "ok");
    docList.open = true;
    refreshDocuments();
    checkReady();
  }

  /** How long followJob keeps trying while the server does not answer (a restart: a graceful shutdown
   * first finishes every queued upload, which may take minutes). */
  const JOB_PATIENCE_MS = 5 * 60 * 1000;
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** A large upload answered 202: poll its job (GET /jobs/{id}) until it is done or failed. A poll that
   * cannot reach the server is retried (a restarted server runs the job it had not finished, and knows its
   * id), and a job the server does not know (another Milvus replica's, or one of more than 500 finished
   * since) is judged by the document list: the page used to say "Not added" in both cases. */
  async function followJob(job, files) {
    const names = files.join(", ");
    setUploadStatus("Indexing " + names + " in the background…", "busy");
    let since = Date.now();
    for (;;) {
      await pause(1000);
      let response;
      try {
        response = await fetch("/jobs/" + encodeURIComponent(job.id),
          { headers: Object.assign({ Accept: "application/json" }, authHeaders()) });
      } catch (e) {
        if (Date.now() - since < JOB_PATIENCE_MS) {
          setUploadStatus("Indexing " + names + " in the background… (the server does not answer; still trying)", "busy");
          continue;
        }
        setUploadStatus("Not known whether " + names + " was added: the server does not answer (" + e.message +
          "). Look under Documents once it is back.", "bad");
        return;
      }
      since = Date.now();
      if (response.status === 404) return jobForgotten(files);
      let body = null;
      try { body = response.ok ? await response.json() : null; } catch (e) { /* not JSON */ }
      if (!body) {
        setUploadStatus("Not known whether " + names + " was added: " + await errorText(response, true) +
          ". Look under Documents.", "bad");
        return;
      }
      if (body.status === "done" && body.result) return uploaded(body.result);
      if (body.status === "failed" || body.status === "done") {  // done without a result: nothing to wait for
        setUploadStatus("Not added: " + ((body.error && body.error.message) || "the upload failed"), "bad");
        return;
      }
    }
  }

  /** The server forgot the job (a restart): the document list (once the server is ready again) says whether
   * the upload was indexed (a graceful shutdown finishes it; a crash undoes it, or it never ran). */
  async function jobForgotten(files) {
    const names = files.join(", ");
    setUploadStatus("The server restarted while indexing " + names + "; checking the document list…", "busy");
    const since = Date.now();
    for (;;) {
      let listed = null;
      try {
        const response = await fetch("/documents", { headers: Object.assign({ Accept: "application/json" }, authHeaders()) });
        if (response.ok) listed = new Set((await response.json()).documents.map((d) => d.id));
      } catch (e) { /* still starting */ }
      if (listed) {
        const missing = files.filter((f) => !listed.has(f.normalize("NFC")));
        if (!missing.length) {
          setUploadStatus("Added " + names + " (the server restarted meanwhile). You can ask about it now.", "ok");
          docList.open = true;
          refreshDocuments();
          checkReady();
        } else {
          setUploadStatus("Not added: the server restarted before " + missing.join(", ") +
            " was indexed; add it again.", "bad");
        }
        return;
      }
      if (Date.now() - since >= JOB_PATIENCE_MS) {
        setUploadStatus("Not known whether " + names + " was added: the server restarted and is not ready. " +
          "Look under Documents once it is.", "bad");
        return;
      }
      await pause(2000);
    }
  }

  /** POST the files to /documents. XMLHttpRequest rather than window.qaWriteFetch because fetch
   * cannot report upload progress; it sends the same Authorization header, asks for a key on
   * 401/403 like qaWriteFetch, and follows a 202 job. */
  function upload(files) {
    if (!files.length || uploading) return;
    if (writesNeed === "read_only") {
      setUploadStatus("Not added: this server is read-only", "bad");
      return;
    }
    if (writesNeed === "key" && !sessionStorage.getItem("qa-api-key")) {
      askForKey("This server needs a write key for uploads.");
      return;
    }
    uploading = true;
    const form = new FormData();
    for (const f of files) form.append("files", f, f.name);
    const names = Array.from(files, (f) => f.name).join(", ");
    const fileNames = Array.from(files, (f) => f.name);
    uploadProgress.hidden = false;
    uploadProgress.value = 0;
    setUploadStatus("Uploading " + names + "…", "busy");
    const done = () => {
      uploading = false;
      uploadProgress.hidden = true;
      fileInput.value = "";
    };
    const xhr = new XMLHttpRequest();
    try {
      xhr.open("POST", "/documents");
      xhr.setRequestHeader("Accept", "application/json");
      for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    } catch (e) {  // e.g. a header the browser refuses: the page must not stay "uploading" for ever
      done();
      setUploadStatus("Not added: " + e.message, "bad");
      return;
    }
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) uploadProgress.value = Math.round((event.loaded / event.total) * 100);
      if (event.loaded === event.total) setUploadStatus("Reading and indexing " + names + "…", "busy");
    });
    xhr.addEventListener("load", () => {
      done();
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 201 && body) {
        uploaded(body);
      } else if (xhr.status === 202 && body && body.id) {
        followJob(body, fileNames);
      } else {
        let message = body && typeof body.message === "string" ? body.message
          : "the server answered " + xhr.status + " " + xhr.statusText;
        if (body && body.error === "already_exists" && /replace it with PUT /.test(message)) {
          message = message.replace(/;? *replace it with PUT .*$/, "") +
            ": delete it first (it goes to the trash), then add the new version";
        }
        setUploadStatus("Not added: " + message, "bad");
        if (xhr.status === 401 || xhr.status === 403) askForKey(message + " — enter a write key, then try again.");
      }
    });
    xhr.addEventListener("error", () => {
      done();
      setUploadStatus("Not added: could not reach the server", "bad");
    });
    xhr.send(form);
  }

  fileInput.addEventListener("change", () => upload(fileInput.files));
  // Files dropped anywhere on the page are uploaded (and never opened by the browser in place of
  // the chat); the drop zone lights up while files are dragged over the page.
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  }
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) dropZone.classList.remove("dragging");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    if (event.dataTransfer && event.dataTransfer.files && event.dataTransfer.files.length) {
      upload(event.dataTransfer.files);
    }
  });

  checkReady();
  input.focus();
})();
