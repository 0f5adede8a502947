"""qa.training.prune: narrower feed-forward layers (structured pruning of intermediate neurons)."""

import json

import pytest

torch = pytest.importorskip("torch")


def _tiny_reader(vocab: int = 60, width: int = 32):
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                     intermediate_size=width, max_position_embeddings=64, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    return BertForQuestionAnswering(cfg).eval()


def _features(n: int, seed: int = 1, vocab: int = 60) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        length = 8 + i % 5
        ids = torch.randint(4, vocab, (length,), generator=g).tolist()
        ids[0], ids[-1] = 2, 3
        start = 2 + i % (length - 4)
        out.append({"input_ids": ids, "token_type_ids": [0] * 3 + [1] * (length - 3),
                    "start_positions": start, "end_positions": start + 1})
    return out


def _logits(model, ids):
    with torch.no_grad():
        o = model(input_ids=ids, attention_mask=torch.ones_like(ids))
    return o.start_logits, o.end_logits


def test_pruning_equals_zeroing_the_dropped_neurons():
    """The pruned model computes exactly what the full one computes with the dropped neurons silenced (GELU(0)=0)."""
    from qa.training.prune import ffn_importance, ffn_modules, prune_ffn

    model = _tiny_reader()
    imp = ffn_importance(model, _features(12))
    kept = prune_ffn(pruned := _tiny_reader(), 20, imp)
    assert pruned.config.intermediate_size == 20
    for (inter, outp), k in zip(ffn_modules(model), kept):
        dropped = sorted(set(range(32)) - set(k))
        with torch.no_grad():
            inter.weight[dropped] = 0.0
            inter.bias[dropped] = 0.0
        assert len(k) == 20 and k == sorted(k)
    ids = torch.tensor([[2, 7, 9, 3, 11, 13, 17, 19, 3]])
    for a, b in zip(_logits(model, ids), _logits(pruned, ids)):
        assert torch.allclose(a, b, atol=1e-5)


def test_keeping_every_neuron_changes_nothing_and_the_pruned_reader_saves_and_loads(tmp_path):
    from transformers import AutoModelForQuestionAnswering

    from qa.training.prune import ffn_importance, prune_ffn

    model = _tiny_reader()
    ids = torch.tensor([[2, 5, 8, 3, 10, 12, 3]])
    before = _logits(model, ids)
    imp = ffn_importance(model, _features(6))
    assert [x.shape[0] for x in imp] == [32, 32, 32]
    prune_ffn(model, 32, imp)
    for a, b in zip(before, _logits(model, ids)):
        assert torch.equal(a, b)
    prune_ffn(model, 8, imp)
    after = _logits(model, ids)
    model.save_pretrained(tmp_path / "p")
    again = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "p").eval()
    assert again.config.intermediate_size == 8
    assert again.bert.encoder.layer[1].intermediate.dense.weight.shape == (8, 16)
    for a, b in zip(after, _logits(again, ids)):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_neuron_that_feeds_nothing_has_no_importance_and_goes_first():
    """Importance is |activation x gradient|: a neuron whose output weights are zero cannot change the loss, so it
    scores 0 and is the first dropped; the model's weights and training flag are left as they were."""
    from qa.training.prune import ffn_importance, ffn_modules, prune_ffn

    model = _tiny_reader()
    dead = [3, 17, 30]
    with torch.no_grad():
        for _, outp in ffn_modules(model):
            outp.weight[:, dead] = 0.0
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    imp = ffn_importance(model, _features(10))
    assert model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    for layer_imp in imp:
        assert torch.all(layer_imp[dead] == 0)
        assert torch.all(torch.cat([layer_imp[:3], layer_imp[4:17], layer_imp[18:30], layer_imp[31:]]) > 0)
    kept = prune_ffn(model, 29, imp)
    assert all(not set(dead) & set(k) for k in kept)


@pytest.mark.parametrize("keep", [0, 33, -1])
def test_pruning_refuses_widths_the_layer_does_not_have(keep):
    from qa.training.prune import ffn_importance, prune_ffn

    model = _tiny_reader()
    imp = ffn_importance(model, _features(4))
    with pytest.raises(ValueError, match="keep must be"):
        prune_ffn(model, keep, imp)
    with pytest.raises(ValueError, match="importance vectors"):
        prune_ffn(model, 8, imp[:2])


def test_the_command_writes_a_pruned_reader_from_training_articles_only(tmp_path):
    """`python -m qa.training.prune`: a loadable reader folder of the asked width, and a summary that says
    what it was measured on; the held-out articles (the verifier's) are never sampled."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.config import PROJECT_ROOT
    from qa.training.prune import main

    tok = AutoTokenizer.from_pretrained(PROJECT_ROOT / "models" / "reader")
    model = _tiny_reader(vocab=tok.vocab_size)
    model.config.max_position_embeddings = 64
    model.save_pretrained(tmp_path / "init")
    tok.save_pretrained(tmp_path / "init")
    arts = []
    for a in range(6):
        ctx = f"Article {a} says the river number {a} is {10 + a} kilometres long and flows north."
        ans = f"{10 + a} kilometres"
        arts.append({"title": f"T{a}", "paragraphs": [{"context": ctx, "qas": [
            {"id": f"{a}-{j}", "question": f"How long is river {a}?" + " really" * j,
             "answers": [{"text": ans, "answer_start": ctx.index(ans)}]} for j in range(3)]}]})
    (tmp_path / "squad.json").write_text(json.dumps({"data": arts}))
    out = tmp_path / "pruned"
    assert main(["--init", str(tmp_path / "init"), "--squad", str(tmp_path / "squad.json"), "--keep", "12",
                 "--out", str(out), "--examples", "100", "--held-out", "2", "--max-length", "48",
                 "--stride", "16"]) == 0
    again = AutoModelForQuestionAnswering.from_pretrained(out / "model")
    assert again.config.intermediate_size == 12
    summary = json.loads((out / "prune.json").read_text())
    assert summary["keep"] == 12 and summary["width_before"] == 32
    assert summary["held_out_articles"] == 2 and summary["questions"] == 12  # 4 articles x 3 questions
    assert (out / "model" / "tokenizer.json").is_file()
