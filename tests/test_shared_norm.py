"""Shared normalisation: the decoder and the training loss, against hand computations."""

import json
import math

import numpy as np
import pytest

from qa.reader.decode import Windows, decode_shared, decode_window


def _windows(offsets_per_window, context_of):
    return Windows(encoding=None, context_of=context_of, offsets=offsets_per_window, word_spans=None)


def test_one_window_shared_equals_per_window():
    rng = np.random.default_rng(0)
    offs = [None, None] + [(i * 2, i * 2 + 1) for i in range(6)] + [None]
    S = rng.normal(size=(1, len(offs))).astype(np.float32)
    E = rng.normal(size=(1, len(offs))).astype(np.float32)
    a, null_a = decode_window(S[0], E[0], offs, 0, 30, 20)
    b, null_b = decode_shared(S, E, _windows([offs], [0]), 30, 20)
    assert math.isclose(null_a, null_b, rel_tol=1e-5)
    assert [(c.start, c.end) for c in a] == [(c.start, c.end) for c in b]
    assert np.allclose([c.prob for c in a], [c.prob for c in b], rtol=1e-5)


def test_two_windows_share_one_softmax_by_hand():
    # window 0: [CLS] t t ; window 1: [CLS] t  -- tokens are single characters at offsets
    offs0 = [None, (0, 1), (2, 3)]
    offs1 = [None, (0, 1)]
    S = np.array([[0.0, 1.0, 2.0], [math.log(2), 3.0, -1e9]], dtype=np.float64)
    E = np.array([[0.0, 2.0, 1.0], [0.0, 0.0, -1e9]], dtype=np.float64)
    cands, null = decode_shared(S, E, _windows([offs0, offs1], [0, 1]), 30, 20)
    null_s = math.log((math.exp(0.0) + math.exp(math.log(2))) / 2)
    zs = math.log(math.exp(1) + math.exp(2) + math.exp(3) + math.exp(null_s))
    null_e = math.log((1 + 1) / 2)
    ze = math.log(math.exp(2) + math.exp(1) + math.exp(0) + math.exp(null_e))
    assert math.isclose(null, math.exp(null_s - zs + null_e - ze), rel_tol=1e-6)
    by_place = {(c.context_index, c.start, c.end): c.prob for c in cands}
    assert math.isclose(by_place[(1, 0, 1)], math.exp(3 - zs + 0 - ze), rel_tol=1e-6)
    assert math.isclose(by_place[(0, 0, 3)], math.exp(1 - zs + 1 - ze), rel_tol=1e-6)
    assert (0, 2, 1) not in by_place  # end before start
    assert sum(by_place.values()) + null <= 1 + 1e-9


def test_shared_norm_loss_by_hand():
    torch = pytest.importorskip("torch")
    from qa.training.shared_norm import shared_norm_loss

    logits = torch.tensor([[0.5, 1.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    ctx = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 1]], dtype=torch.bool)
    pos = torch.zeros_like(ctx)
    pos[0, 2] = True  # gold start in window 0 of group 0 (windows 0 and 1)
    member = torch.tensor([[1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    null = torch.tensor([False, True])  # group 1 (window 2) has no answer
    loss = shared_norm_loss(logits, ctx, pos, member, null)
    null0 = math.log((math.exp(0.5) + math.exp(0.0)) / 2)
    z0 = math.log(math.exp(1) + math.exp(2) + math.exp(3) + math.exp(0) + math.exp(null0))
    l0 = z0 - 2.0
    z1 = math.log(math.exp(0) * 3 + math.exp(1.0))
    l1 = z1 - 1.0
    assert math.isclose(float(loss), (l0 + l1) / 2, rel_tol=1e-5)


def _groups_example():
    torch = pytest.importorskip("torch")
    logits = torch.tensor([[0.5, 1.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    ctx = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 1]], dtype=torch.bool)
    member = torch.tensor([[1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    return torch, logits, ctx, member


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_shared_norm_log_probs_are_one_distribution_per_group(temperature):
    torch, logits, ctx, member = _groups_example()
    from qa.training.shared_norm import shared_norm_log_probs

    tok, null = shared_norm_log_probs(logits, ctx, member, temperature)
    for g in range(member.shape[0]):
        rows = member[g]
        mass = float(tok[rows].exp()[ctx[rows]].sum() + null[g].exp())
        assert math.isclose(mass, 1.0, rel_tol=1e-6)
    # group 0 by hand: tokens 1.0, 2.0 (window 0) and 3.0, 0.0 (window 1); null = log mean exp(cls / T)
    T = temperature
    null0 = math.log((math.exp(0.5 / T) + math.exp(0.0 / T)) / 2)
    z0 = math.log(sum(math.exp(v / T) for v in (1.0, 2.0, 3.0, 0.0)) + math.exp(null0))
    assert math.isclose(float(tok[1, 1]), 3.0 / T - z0, rel_tol=1e-6)
    assert math.isclose(float(null[0]), null0 - z0, rel_tol=1e-6)


def test_distillation_loss_is_the_kl_between_group_distributions():
    torch, teacher, ctx, member = _groups_example()
    from qa.training.shared_norm import distillation_loss, shared_norm_log_probs

    assert abs(float(distillation_loss(teacher, teacher, ctx, member, 2.0))) < 1e-6
    student = teacher.clone()
    student[1, 1] = 0.0  # the student disagrees on one token of group 0
    loss = float(distillation_loss(student, teacher, ctx, member, 2.0))
    t_tok, t_null = shared_norm_log_probs(teacher, ctx, member, 2.0)
    s_tok, s_null = shared_norm_log_probs(student, ctx, member, 2.0)
    kl = []
    for g in range(2):
        rows = member[g]
        pt = torch.cat([t_tok[rows][ctx[rows]], t_null[g : g + 1]])
        ps = torch.cat([s_tok[rows][ctx[rows]], s_null[g : g + 1]])
        kl.append(float((pt.exp() * (pt - ps)).sum()))
    assert kl[0] > 0 and abs(kl[1]) < 1e-6  # group 1 is untouched
    assert math.isclose(loss, sum(kl) / 2 * 4.0, rel_tol=1e-5)
    # padding (outside ctx) never counts, however wild
    padded = student.clone()
    padded[~ctx] = 50.0
    padded[:, 0] = student[:, 0]  # keep the [CLS] (null) logits
    assert math.isclose(float(distillation_loss(padded, teacher, ctx, member, 2.0)), loss, rel_tol=1e-6)


def test_distillation_pulls_a_student_towards_its_teacher():
    torch = pytest.importorskip("torch")
    from qa.training.shared_norm import distillation_loss

    torch.manual_seed(0)
    ctx = torch.ones(4, 6, dtype=torch.bool)
    ctx[:, 0] = False
    member = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool)
    teacher = torch.randn(4, 6) * 2
    student = torch.zeros(4, 6, requires_grad=True)
    opt = torch.optim.Adam([student], lr=0.1)
    first = None
    for _ in range(300):
        loss = distillation_loss(student, teacher, ctx, member, 2.0)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.01 * first


def _tiny_reader(layers: int):
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    return torch, BertForQuestionAnswering(cfg).eval()


def test_keep_layers_makes_a_smaller_reader_that_saves_and_loads(tmp_path):
    torch, model = _tiny_reader(4)
    from transformers import AutoModelForQuestionAnswering

    from qa.training.shared_norm import keep_layers

    ids = torch.tensor([[2, 5, 7, 3, 9, 11, 3]])
    enc = model.bert.encoder
    kept = [enc.layer[0], enc.layer[3]]
    keep_layers(model, [0, 3])
    assert model.config.num_hidden_layers == 2
    assert list(model.bert.encoder.layer) == kept
    with torch.no_grad():
        h = model.bert.embeddings(input_ids=ids)
        for layer in kept:
            h = layer(h)[0] if isinstance(layer(h), tuple) else layer(h)
        direct = model(input_ids=ids).start_logits
    model.save_pretrained(tmp_path / "student")
    again = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "student").eval()
    assert again.config.num_hidden_layers == 2
    with torch.no_grad():
        assert torch.allclose(again(input_ids=ids).start_logits, direct, atol=1e-6)
        assert torch.allclose(again.qa_outputs(h)[..., 0], direct, atol=1e-5)


@pytest.mark.parametrize("layers", [[], [4], [-1]])
def test_keep_layers_refuses_layers_the_model_does_not_have(layers):
    torch, model = _tiny_reader(4)
    from qa.training.shared_norm import keep_layers

    with pytest.raises(ValueError, match="student layers"):
        keep_layers(model, layers)


def test_a_student_is_distilled_end_to_end(tmp_path):
    """`python -m qa.training.shared_norm --student-layers ... --distill ...` on a tiny teacher: the saved student
    has the kept layers, shares the teacher's embeddings exactly (--freeze-embeddings), was trained (its layers
    moved), and the run reports what it did."""
    torch = pytest.importorskip("torch")
    import gzip

    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, BertConfig, BertForQuestionAnswering

    from qa.config import PROJECT_ROOT
    from qa.training.shared_norm import main

    tok = AutoTokenizer.from_pretrained(PROJECT_ROOT / "models" / "reader")
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=128)
    teacher = BertForQuestionAnswering(cfg)
    teacher.save_pretrained(tmp_path / "teacher")
    tok.save_pretrained(tmp_path / "teacher")
    paras = ["Astana became the capital of Kazakhstan in 1997. The city lies on the Ishim River.",
             "Almaty was the capital until 1997 and remains the largest city, with about two million people.",
             "Mountains of the Trans-Ili Alatau rise south of the city."]
    qas = [("When did Astana become the capital?", 0, "1997"), ("What is the largest city?", 1, "Almaty"),
           ("Which mountains rise south of the city?", 2, "Trans-Ili Alatau")]
    squad = {"data": [{"title": "K", "paragraphs": [
        {"context": p, "qas": [{"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": p.index(a)}]}
                               for i, (q, pi, a) in enumerate(qas) if pi == n]} for n, p in enumerate(paras)]}]}
    (tmp_path / "squad.json").write_text(json.dumps(squad))
    groups = [{"qid": f"q{i}", "question": q, "kind": "answerable", "passages": [pi, (pi + 1) % 3], "gold": pi,
               "answer_start": paras[pi].index(a), "answer_text": a} for i, (q, pi, a) in enumerate(qas)]
    groups.append({"qid": "n0", "question": "Who won the 2018 World Cup?", "kind": "null", "passages": [0, 2],
                   "gold": -1, "answer_start": -1, "answer_text": ""})
    with gzip.open(tmp_path / "groups.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(g) for g in groups))
    out = tmp_path / "student"
    assert main(["--squad", str(tmp_path / "squad.json"), "--groups", str(tmp_path / "groups.jsonl.gz"),
                 "--init", str(tmp_path / "teacher"), "--out", str(out), "--student-layers", "0,2",
                 "--freeze-embeddings", "--distill", "0.5", "--epochs", "3", "--groups-per-batch", "2",
                 "--lr", "1e-2", "--cpu", "--dev-squad", str(tmp_path / "squad.json"), "--eval-after"]) == 0
    student = AutoModelForQuestionAnswering.from_pretrained(out / "model")
    assert student.config.num_hidden_layers == 2
    t_sd, s_sd = teacher.state_dict(), student.state_dict()
    for k, v in s_sd.items():
        if k.startswith("bert.embeddings."):
            assert torch.equal(v, t_sd[k]), k  # frozen: byte for byte the teacher's
    moved = [k for k in s_sd if k.startswith("bert.encoder.layer.1.")
             and not torch.equal(s_sd[k], t_sd[k.replace("layer.1.", "layer.2.")])]
    assert moved  # the student's second layer started as the teacher's third and was trained
    figures = json.loads((out / "figures.json").read_text())
    assert figures["student"] == {"layers_kept": [0, 2]}
    assert figures["distill"]["weight"] == 0.5 and figures["train"]["steps"] == 6
    assert figures["after"]["single_shared"]["answerable"] == 3
    # --steps: the run stops there, whatever the epochs would give (6 steps above)
    assert main(["--squad", str(tmp_path / "squad.json"), "--groups", str(tmp_path / "groups.jsonl.gz"),
                 "--init", str(tmp_path / "teacher"), "--out", str(tmp_path / "short"), "--student-layers", "0,2",
                 "--distill", "0.5", "--epochs", "3", "--groups-per-batch", "2", "--steps", "4", "--cpu"]) == 0
    assert json.loads((tmp_path / "short" / "figures.json").read_text())["train"]["steps"] == 4


def test_a_student_cannot_be_interpolated_with_its_teacher(tmp_path):
    from qa.training.shared_norm import main

    with pytest.raises(SystemExit):
        main(["--squad", "x", "--groups", "y", "--init", "z", "--out", str(tmp_path), "--student-layers", "0,2",
              "--interpolate", "0.5"])
