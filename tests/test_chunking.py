"""Chunking: exact offsets, token limits and coverage, for arbitrary Unicode (hypothesis)."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.chunking import Chunker, load_tokenizer
from qa.ingest import load_corpus

from qa.config import PROJECT_ROOT

SEEDS_DIR = PROJECT_ROOT / "seeds"


@functools.lru_cache(maxsize=1)
def _tok():
    return load_tokenizer()


@functools.lru_cache(maxsize=None)
def _chunker(chunk_tokens: int, overlap: int) -> Chunker:
    return Chunker(tokenizer=_tok(), chunk_tokens=chunk_tokens, chunk_overlap=overlap)


def check_chunks(chunker: Chunker, text: str) -> None:
    chunks = chunker.chunk_text(text, "doc.txt")
    covered = bytearray(len(text))
    for c in chunks:
        assert c.document == "doc.txt"
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start : c.end] == c.text
        assert c.text != ""
        # Hard limit, no tolerance: every chunk is re-tokenized and split further if needed.
        assert chunker.count_tokens(c.text) <= chunker.chunk_tokens, c
        assert len(c.text) <= chunker.max_chunk_chars
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(text) if not covered[i] and not ch.isspace()]
    assert not missing, f"uncovered characters at {missing[:10]}: {[text[i] for i in missing[:10]]}"
    if text.strip():
        assert chunks
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)


WORDS = st.sampled_from(
    [
        "the", "protest", "began", "on", "January", "2.", "Kazakhstan", "café", "naïve", "e\u0301",
        "👍🏽", "👨‍👩‍👧", "中文字", "日本語の文章。", "한국어", "ﬁ", "İstanbul", "straße", "x" * 120,
        "https://example.com/a_b-c?d=e", "\u200b", "\x00", "\x1c", "\u2028", "\u00a0", "\u3000",
        "\t", "\n", "\n\n", "\n\n\n", "  ", ".", "!", "?", "\"Quoted.\"", "(paren)", "٣٤٥", "עברית",
        "Ω≈ç√", "\ufeff", "\U0001d400\U0001d401", "a" * 3000,
    ]
)

wordy_text = st.lists(WORDS, max_size=200).map(lambda ws: " ".join(ws))
mixed_text = st.lists(st.one_of(WORDS, st.text(max_size=30)), max_size=150).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(st.text(max_size=400), wordy_text, mixed_text),
    params=st.sampled_from([(200, 50), (16, 4), (8, 0), (5, 2), (32, 31), (3, 1)]),
)
def test_chunks_slice_fit_and_cover(text, params):
    check_chunks(_chunker(*params), text)


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=500, max_size=3000))
def test_long_random_unicode_default_params(text):
    check_chunks(_chunker(200, 50), text)


class _LengthSpy:
    """The tokenizer, recording how many characters each call tokenises."""

    def __init__(self, tokenizer):
        self.tokenizer, self.lengths = tokenizer, []

    def __call__(self, text, **kw):
        self.lengths.append(len(text))
        return self.tokenizer(text, **kw)


def _blocked(block_chars: int) -> Chunker:
    chunker = Chunker(tokenizer=_LengthSpy(_tok()))
    chunker.block_chars = block_chars
    return chunker


def test_a_long_text_is_tokenised_in_blocks():
    """A corpus file was tokenised whole to chunk it: a 50 MB text file took 8 GB of memory (162 s) in `qa index`
    and at every `qa serve` start that indexed it. Texts longer than ``block_chars`` are now tokenised in blocks cut
    at paragraph breaks (else line breaks, spaces, anywhere), with every guarantee of the chunks kept."""
    chunker = _blocked(2000)
    paragraph = "The council met on Monday. It voted on the harbor budget, then adjourned. " * 6
    text = "\n\n".join([paragraph] * 30) + "\n" + "x" * 2500 + " tail words " + "y" * 4100
    check_chunks(chunker, text)
    assert max(chunker.tokenizer.lengths) <= 2000 and len(text) > 19000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(wordy_text, mixed_text))
def test_chunks_of_blocked_texts_slice_fit_and_cover(text):
    check_chunks(_blocked(64), text)



@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n  ",
        "x",
        "a" * 20000,  # one giant run without spaces
        ("word " * 5000).strip(),
        "\n".join(["short line."] * 500),
        "\ufeffBOM first. " * 300,
        "中文没有空格" * 800,
        "e\u0301" * 3000,
        "👍🏽" * 2000,
    ],
)
def test_edge_cases(text):
    check_chunks(_chunker(200, 50), text)
    check_chunks(_chunker(16, 4), text)


def test_prefers_paragraph_then_sentence_boundaries():
    chunker = _chunker(40, 10)
    para = "This is a sentence about topic {i}. Here is another sentence that follows it."
    text = "\n\n".join(para.format(i=i) for i in range(20))
    chunks = chunker.chunk_text(text)
    assert len(chunks) > 3
    for c in chunks[:-1]:
        nxt = text[c.end : c.end + 2]
        # Each cut falls at a paragraph break (or, failing that, right after a sentence end).
        assert nxt == "\n\n" or c.text.endswith("."), repr(c.text[-30:])
    assert sum(text[c.end : c.end + 2] == "\n\n" for c in chunks[:-1]) >= len(chunks) // 2


def test_overlap_between_consecutive_chunks():
    chunker = _chunker(50, 15)
    text = " ".join(f"Sentence number {i} has several words in it." for i in range(60))
    chunks = chunker.chunk_text(text)
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end  # they overlap
        assert b.start > a.start


def test_seed_documents(chunker):
    docs, _ = load_corpus(SEEDS_DIR)
    for doc in docs:
        chunks = chunker.chunk(doc)
        assert chunks and all(c.document == doc.id for c in chunks)
        check_chunks(chunker, doc.text)
        for c in chunks:
            assert doc.text[c.start : c.end] == c.text


def test_invalid_params():
    with pytest.raises(ValueError):
        Chunker(tokenizer=_tok(), chunk_tokens=10, chunk_overlap=10)
    with pytest.raises(ValueError):
        Chunker(tokenizer=_tok(), chunk_tokens=2, chunk_overlap=0)


def test_hangul_needs_three_tokens_per_character():
    # Why MIN_CHUNK_TOKENS is 3: one syllable is 3 jamo tokens; the smallest window still fits it.
    chunker = _chunker(3, 1)
    assert chunker.count_tokens("각") == 3
    check_chunks(chunker, "각각각 한국어 텍스트")


def test_a_missing_embedding_model_folder_says_what_to_do(tmp_path):
    """`qa index` with QA_EMBEDDING_MODEL naming no model folder: transformers took the path for a Hub id and
    raised OSError ("Repo id must use alphanumeric chars ...") as a traceback; now one line saying what to do."""
    from qa.config import ModelNotFoundError

    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    for path in (tmp_path / "missing", tmp_path, tmp_path / "a-file"):
        with pytest.raises(ModelNotFoundError, match="set QA_EMBEDDING_MODEL to one, or unset it"):
            load_tokenizer(path)
