"""The training loop itself, on a tiny SQuAD-format set (seconds, not a real training run):
it takes steps, logs, checkpoints, resumes, and uses bf16 autocast only where bf16 is native."""
from __future__ import annotations

import json

import pytest

from qa.training.train import load_config, train

PARAS = [
    ("Astana", "Astana became the capital of Kazakhstan in 1997. The city lies on the Ishim River.",
     [("When did Astana become the capital?", "1997"), ("Which river runs through Astana?", "Ishim River")]),
    ("Astana", "The Bayterek tower was completed in 2002 and is 105 metres tall.",
     [("How tall is the Bayterek tower?", "105 metres")]),
    ("Almaty", "Almaty was the capital until 1997 and remains the largest city, with about two million people.",
     [("What is the largest city?", "Almaty"), ("How many people live in Almaty?", "about two million")]),
    ("Almaty", "Mountains of the Trans-Ili Alatau rise south of the city.",
     [("Which mountains rise south of the city?", "Trans-Ili Alatau")]),
]


def _squad_file(path, paras, impossible: bool = False) -> None:
    data: dict[str, dict] = {}
    for n, (title, ctx, qas) in enumerate(paras):
        art = data.setdefault(title, {"title": title, "paragraphs": []})
        items = []
        for m, (q, a) in enumerate(qas):
            if impossible:
                items.append({"id": f"{n}-{m}-x", "question": q, "answers": [], "is_impossible": True})
            else:
                items.append({"id": f"{n}-{m}", "question": q,
                              "answers": [{"text": a, "answer_start": ctx.index(a)}]})
        art["paragraphs"].append({"context": ctx, "qas": items})
    path.write_text(json.dumps({"data": list(data.values())}), encoding="utf-8")


@pytest.fixture
def tiny_squad(tmp_path):
    squad = tmp_path / "squad"
    squad.mkdir()
    _squad_file(squad / "train.json", PARAS)
    _squad_file(squad / "valid.json", PARAS[:2])
    _squad_file(squad / "noans.json", [(t, c, [("Who won the 2018 World Cup?", "")]) for t, c, _ in PARAS],
                impossible=True)
    cfg = load_config(overrides={"train_file": "train.json", "valid_file": "valid.json", "noans_file": "noans.json",
                                 "batch_size": 4, "eval_every": 2, "eval_questions": 3, "checkpoint_every": 1,
                                 "synthetic_negative_fraction": 0.5})
    return squad, cfg


def _log(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_train_steps_checkpoints_and_resumes(tiny_squad, tmp_path, monkeypatch):
    import qa.reader.reader as reader_mod

    squad, cfg = tiny_squad
    run_dir = tmp_path / "run"
    # a CPU without native bf16 (AVX2 only): the config asks for bf16, training runs in fp32
    monkeypatch.setattr(reader_mod, "native_bf16", lambda: False)
    out = train(cfg, squad, run_dir, max_steps=2, device="cpu")
    assert out["step"] == 2
    log = _log(run_dir)
    start = log[0]
    assert start["event"] == "start" and start["bf16"] is False and start["device"] == "cpu"
    assert start["features"] >= len(PARAS)
    evals = [r for r in log if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [2] and 0 <= evals[0]["f1"] <= 100
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2 and state["config"] == cfg
    assert (run_dir / "checkpoint" / "model.safetensors").exists()
    assert (run_dir / "best" / "model.safetensors").exists()

    # --resume continues at step 2 of a 3-step schedule, with the same config
    out = train(cfg, squad, run_dir, resume=True, max_steps=3, device="cpu")
    assert out["step"] == 3
    assert [r["step"] for r in _log(run_dir) if r["event"] == "start"] == [0, 2]
    with pytest.raises(SystemExit, match="different config"):
        train({**cfg, "learning_rate": 1.0}, squad, run_dir, resume=True, max_steps=3, device="cpu")


def test_bf16_is_used_only_where_native(monkeypatch):
    import qa.reader.reader as reader_mod

    monkeypatch.setattr(reader_mod, "native_bf16", lambda: False)
    assert reader_mod.bf16_native_on("cpu") is False
    monkeypatch.setattr(reader_mod, "native_bf16", lambda: True)
    assert reader_mod.bf16_native_on("cpu") is True


def test_trained_checkpoint_validates_exports_and_serves(tiny_squad, tmp_path):
    import hashlib

    from qa.training.export import export, validate_checkpoint
    from qa.reader.reader import ExtractiveReader

    squad, cfg = tiny_squad
    run_dir = tmp_path / "run"
    train(cfg, squad, run_dir, max_steps=1, device="cpu")
    state = json.loads((run_dir / "best" / "state.json").read_text())
    figures = validate_checkpoint(run_dir / "best", cfg, squad)
    assert figures["squad_v1_dev42"]["count"] == 3 and 0 <= figures["squad_v1_dev42"]["f1"] <= 100
    assert figures["precision"] in ("torch-bf16", "torch-fp32")
    assert 0.0 <= figures["threshold"] <= 1.0
    from qa.training.validate import TEMPERATURE_GRID

    t = figures["temperature"]
    assert t["value"] in TEMPERATURE_GRID and t["questions"] == 3  # the 3 validation questions, 1 distractor each
    assert t["multi_passage_f1"][str(t["value"])] == max(t["multi_passage_f1"].values())
    out = tmp_path / "shipped"
    card = export(run_dir / "best", out, cfg, figures, state)
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    assert card["sha256"]["model.safetensors"] == digest and digest in (out / "MODEL_CARD.md").read_text()
    assert json.loads((out / "reader_config.json").read_text())["validated_precision"] == figures["precision"]
    assert card["stages"] == [{"init_from": "", "train_questions": 0, "skip_batches": 0, "steps": 1,
                               "learning_rate": cfg["learning_rate"]}]
    assert "(1) from the base model, all questions: 1 steps" in (out / "MODEL_CARD.md").read_text()
    reader = ExtractiveReader(out)
    reader.warm_up()
    assert reader.threshold == figures["threshold"] and reader.temperature == t["value"]
    ctx = PARAS[0][1]
    guess = reader.read_contexts("When did Astana become the capital?", [("a", ctx)]).best_guess
    assert guess is not None and ctx[guess.top.start:guess.top.end] == guess.text


def test_soup_averages_runs_that_differ_only_in_learning_rate(tiny_squad, tmp_path):
    from safetensors.torch import load_file

    from qa.training.export import export, validate_checkpoint
    from qa.training.soup import soup

    squad, cfg = tiny_squad
    cfg = {**cfg, "warmup_ratio": 0.0}  # so that the one step moves the weights
    runs = []
    for lr in (1e-4, 5e-4):
        run_dir = tmp_path / f"run-{lr}"
        train({**cfg, "learning_rate": lr, "eval_every": 1}, squad, run_dir, max_steps=1, device="cpu")
        runs.append(run_dir / "best")
    out = tmp_path / "soup"
    state = soup(runs, out)
    assert [r["learning_rate"] for r in state["soup"]] == [1e-4, 5e-4]
    a, b, s = (load_file(str(p / "model.safetensors")) for p in (*runs, out))
    name = "qa_outputs.weight"
    assert not a[name].equal(b[name])  # the two runs really differ
    assert ((a[name] + b[name]) / 2 - s[name]).abs().max() < 1e-6
    assert all(s[k].dtype == a[k].dtype for k in a)

    figures = validate_checkpoint(out, cfg, squad)
    card = export(out, tmp_path / "shipped", cfg, figures, state)
    assert [r["learning_rate"] for r in card["soup"]] == [1e-4, 5e-4]
    assert "uniform average (`qa soup-reader`) of 2 runs" in (tmp_path / "shipped" / "MODEL_CARD.md").read_text()

    # runs trained on other data (here: another batch size) are not averaged
    other = tmp_path / "run-other"
    train({**cfg, "batch_size": 2, "eval_every": 1}, squad, other, max_steps=1, device="cpu")
    with pytest.raises(ValueError, match="batch_size"):
        soup([runs[0], other / "best"], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="at least two"):
        soup(runs[:1], tmp_path / "bad")
