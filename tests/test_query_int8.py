"""int8 question embeddings (qa.query_int8): the shipped scales belong to the bundled weights, the int8 vectors
stay close to fp32 for any text, documents stay fp32, and anything that does not fit keeps fp32 (or, asked for
by name, stops with what to do)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import torch

from qa import query_int8
from qa.config import Settings
from qa.embedding import Embedder
from qa.reader.int8 import Int8Error
from qa.writes import file_sha256

SCALES = Settings().query_int8_scales
QUESTIONS = ["Who is the first president of Kazakhstan?", "How many security forces were killed in Almaty?",
             "When did the CSTO peacekeepers arrive?", "What is the price of liquefied gas per litre?",
             "Which Tajik president did Putin consult?", "a", "", "Ünïcödé — “quotes”, emoji 🙂 and 中文",
             "token " * 400]
needs_fbgemm = pytest.mark.skipif("fbgemm" not in torch.backends.quantized.supported_engines,
                                  reason="int8 query layers need PyTorch's FBGEMM kernels (x86)")


@pytest.fixture(scope="module")
def fp32(model_path):
    return Embedder(model_path, query_precision="fp32").warm_up()


@pytest.fixture(scope="module")
def int8(model_path):
    return Embedder(model_path, query_precision="int8").warm_up()


def test_shipped_scales_belong_to_the_bundled_weights(model_path):
    data = query_int8.load_scales(SCALES, query_int8.weights_file(model_path))
    assert data["weights_sha256"] == file_sha256(query_int8.weights_file(model_path))
    assert "train" in data["calibration_source"] and "dev" not in data["calibration_source"]
    assert len(data["input_absmax"]) == 36  # six layers: query, key, value, attention output, two feed-forward
    card = (SCALES.parent / "README.md").read_text(encoding="utf-8")
    assert file_sha256(SCALES) in card and data["weights_sha256"] in card


@needs_fbgemm
def test_auto_runs_int8_on_this_cpu_and_documents_stay_fp32(model_path, fp32, int8):
    auto = Embedder(model_path).warm_up()
    assert auto.query_runtime == "int8" and int8.query_runtime == "int8" and fp32.query_runtime == "fp32"
    docs = ["The protests began on 2 January in Zhanaozen.", "CSTO troops arrived in Almaty."]
    assert np.array_equal(int8.embed_documents(docs), fp32.embed_documents(docs))  # the index does not change


@needs_fbgemm
def test_int8_question_vectors_are_close_to_fp32(fp32, int8):
    for q in QUESTIONS:
        a, b = int8.embed_query(q), fp32.embed_query(q)
        assert a.dtype == np.float32 and a.shape == b.shape and abs(float(np.linalg.norm(a)) - 1.0) < 1e-5
        # real questions >= 0.99 (0.994-0.998 on 720 held-out ones); odd texts (empty, 400 repeated words) >= 0.975
        assert float(a @ b) > (0.99 if q.endswith("?") else 0.975), q


@needs_fbgemm
@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_int8_question_vectors_are_close_to_fp32_for_any_text(fp32, int8, text):
    assert float(int8.embed_query(text) @ fp32.embed_query(text)) > 0.95


@needs_fbgemm
def test_int8_ranks_the_seed_chunks_as_fp32_does(fp32, int8, seed_index):
    """On the seed index, the dense top 5 of the seed questions hardly moves."""
    from qa.evaluation.dataset import load_eval_set
    from qa.config import PROJECT_ROOT

    items = load_eval_set(PROJECT_ROOT / "eval" / "seeds_qa.jsonl")
    same = []
    for it in items:
        a = [i for i, _ in seed_index.search(int8.embed_query(it.question), 5)]
        b = [i for i, _ in seed_index.search(fp32.embed_query(it.question), 5)]
        same.append(len(set(a) & set(b)) / 5)
    assert np.mean(same) > 0.9


def _copy_scales(tmp_path: Path, **change) -> Path:
    data = json.loads(SCALES.read_text(encoding="utf-8"))
    data.update(change)
    out = tmp_path / "query_int8.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


@pytest.mark.parametrize("case", ["missing", "other weights", "unreadable"])
def test_scales_that_do_not_fit_keep_fp32_under_auto_and_stop_int8(tmp_path, model_path, caplog, case):
    path = (tmp_path / "none.json" if case == "missing" else
            _copy_scales(tmp_path, weights_sha256="0" * 64) if case == "other weights" else
            _copy_scales(tmp_path, alpha="x"))
    with caplog.at_level(logging.INFO, logger="qa.embedding"):
        auto = Embedder(model_path, query_scales=path).warm_up()
    assert auto.query_runtime == "fp32" and "question embeddings in fp32" in caplog.text
    q = "Who leads the CSTO?"
    assert np.abs(auto.embed_query(q) - auto.embed_documents([q])[0]).max() < 1e-5
    with pytest.raises(Int8Error, match="quantize-embedder"):
        Embedder(model_path, query_precision="int8", query_scales=path).warm_up()


@needs_fbgemm
def test_scales_that_disagree_with_fp32_on_the_probes_are_not_used(tmp_path, model_path, caplog):
    data = json.loads(SCALES.read_text(encoding="utf-8"))
    data["input_absmax"] = {n: [v * 1e-3 for v in vs] for n, vs in data["input_absmax"].items()}  # clips everything
    path = tmp_path / "clipped.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="qa.embedding"):
        assert Embedder(model_path, query_scales=path).warm_up().query_runtime == "fp32"
    assert "differ from fp32" in caplog.text


def test_precision_is_checked(model_path):
    with pytest.raises(ValueError, match="query precision"):
        Embedder(model_path, query_precision="int4")
    with pytest.raises(ValueError):
        Settings(query_precision="int4")
    assert Settings(query_precision="fp32").query_precision == "fp32"


@needs_fbgemm
def test_calibrate_writes_what_load_scales_reads(tmp_path, model_path, fp32):
    out = tmp_path / "sub" / "q.json"
    manifest = query_int8.calibrate(fp32._query_encoder, QUESTIONS[:5], query_int8.weights_file(model_path), out,
                                    "five test questions", alpha=0.5)
    assert manifest["quantised_layers"] == 36 and manifest["calibration_questions"] == 5
    data = query_int8.load_scales(out, query_int8.weights_file(model_path))
    assert data["alpha"] == 0.5 and set(data["input_min"]) == set(data["input_max"])
    assert not list(out.parent.glob(".*.tmp"))
    with pytest.raises(ValueError):
        query_int8.calibrate(fp32._query_encoder, [], query_int8.weights_file(model_path), out, "none")


@needs_fbgemm
def test_quantize_embedder_cli_writes_scales_that_auto_then_uses(tmp_path, capsys, model_path):
    from qa.cli import main

    assert main(["quantize-embedder", "--squad-dir", str(tmp_path), "--out", str(tmp_path / "q.json")]) == 2
    assert "training data not found" in capsys.readouterr().out
    qas = [{"id": f"q{i}", "question": q, "answers": [{"text": "Kazakhstan", "answer_start": 0}]}
           for i, q in enumerate(QUESTIONS[:4])]
    squad = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "Kazakhstan is large.",
                                                                        "qas": qas}]}]}
    (tmp_path / "squad-v1.1-train.json").write_text(json.dumps(squad), encoding="utf-8")
    assert main(["quantize-embedder", "--squad-dir", str(tmp_path), "--questions", "0"]) == 2
    out = tmp_path / "q.json"
    assert main(["quantize-embedder", "--squad-dir", str(tmp_path), "--questions", "3", "--out", str(out)]) == 0
    assert '"quantised_layers": 36' in capsys.readouterr().out
    data = query_int8.load_scales(out, query_int8.weights_file(model_path))
    assert data["calibration_questions"] == 3 and "squad-v1.1-train.json" in data["calibration_source"]


def test_the_pipeline_and_the_default_shared_embedder_are_one_instance(model_path):
    """Default arguments and the settings' defaults key the same shared embedder: the model loads once."""
    from qa.embedding import embedder_for, get_embedder

    s = Settings(device="cpu")
    assert embedder_for(s) is get_embedder(model_path, s.embedding_batch_size)
    assert embedder_for(s.model_copy(update={"query_precision": "fp32"})) is not embedder_for(s)


def test_int8_by_name_without_scales_is_a_clear_cli_error(tmp_path, monkeypatch, capsys):
    from qa import cli

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The protests began on 2 January.\n", encoding="utf-8")
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", query_precision="int8",
                 query_int8_scales=tmp_path / "none.json")
    monkeypatch.setattr(cli, "get_cli_settings", lambda: s)
    assert cli.main(["ask", "When did the protests begin?"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("qa: error: no query scales at") and "qa quantize-embedder" in err and "Traceback" not in err
