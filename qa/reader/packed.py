"""The reader's forward pass over windows of different lengths without padding them ("packed").

A padded batch of a question's windows (5 passages of ~120-230 tokens) spends about 15 % of its work on padding
tokens. Here the position-wise parts of the encoder -- embeddings, the query/key/value and output projections,
the feed-forward layers and the span head, which are nearly all of the compute -- run once over every window's
tokens laid end to end. The attention, the one part that mixes tokens, runs window by window on the CPU: each
window's queries, keys and values are a slice of the packed tokens, attended without a mask or padding (no
scatter into a padded block and back; ~8 % of the int8 forward on two AVX2 cores, docs/benchmarks.md). On a GPU,
where thirty small attention calls would each pay a launch, the windows are scattered into one padded block and
attended under the padding mask in one call. The logits are those of the padded forward within float rounding
(``tests/test_packed.py``; :func:`matches_padded` checks it on the loaded model at warm-up, and the reader falls
back to the padded forward for a model whose layers are not laid out as BERT's).
"""

from __future__ import annotations

import numpy as np


def supports(model) -> bool:
    """Whether ``model`` has the BERT layout this forward walks (embeddings, encoder.layer[*].attention.self...)."""
    base = getattr(model, "base_model", None)
    try:
        layer = base.encoder.layer[0]
        sa = layer.attention.self
        return all(hasattr(x, "forward") for x in (base.embeddings, sa.query, sa.key, sa.value,
                                                    layer.attention.output, layer.intermediate, layer.output,
                                                    model.qa_outputs)) and hasattr(sa, "attention_head_size")
    except (AttributeError, IndexError, TypeError):
        return False


def _attend(q, k, v, q_bounds: list[int], k_bounds: list[int], heads: int, size: int, scale: float):
    """Each window's queries ``q[q_bounds[w]:q_bounds[w+1]]`` attending to its keys and values (the same slice
    of ``k``/``v`` by ``k_bounds``), unmasked; the windows' outputs laid end to end."""
    import torch
    import torch.nn.functional as F

    parts = []
    for w in range(len(q_bounds) - 1):
        lo, hi, klo, khi = q_bounds[w], q_bounds[w + 1], k_bounds[w], k_bounds[w + 1]
        qw = q[lo:hi].view(1, hi - lo, heads, size).transpose(1, 2)
        kw, vw = (t[klo:khi].view(1, khi - klo, heads, size).transpose(1, 2) for t in (k, v))
        parts.append(F.scaled_dot_product_attention(qw, kw, vw, scale=scale)[0].transpose(0, 1)
                     .reshape(hi - lo, heads * size))
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def packed_logits(model, rows: list, device: str = "cpu", per_window: bool | None = None,
                  probe=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(start, end) logits of each window ``(input_ids, token_type_ids)``, as float32 numpy arrays.

    The position-wise layers run over the windows' tokens end to end ([tokens, hidden]). The attention runs
    ``per_window`` (default: on the CPU) on each window's slice of the queries, keys and values, unmasked;
    otherwise they are scattered into a padded [windows, heads, longest, head size] block, attended under the
    padding mask in one call and gathered back. Either way the attention is the padded forward's.

    ``probe`` (qa.reader.token_pruning.TokenProbe; per window only): from layer ``probe.layer`` on, only the
    tokens :func:`~qa.reader.token_pruning.kept_tokens` keeps are computed; the others keep their hidden state
    and still serve as keys and values, and their logits are padding's (they cannot be an answer).
    """
    import torch
    import torch.nn.functional as F

    if per_window is None:
        per_window = str(device).startswith("cpu")
    lens = [len(r[0]) for r in rows]
    longest, n_rows = max(lens), len(lens)
    ids = torch.from_numpy(np.concatenate([np.asarray(r[0], dtype=np.int64) for r in rows])).to(device)
    types = torch.from_numpy(np.concatenate([np.asarray(r[1], dtype=np.int64) for r in rows])).to(device)
    pos = torch.from_numpy(np.concatenate([np.arange(n, dtype=np.int64) for n in lens])).to(device)
    bounds = np.concatenate([[0], np.cumsum(lens)]).tolist()
    if not per_window:
        # where each token sits in the padded block, and which key positions are real
        place = torch.from_numpy(np.concatenate([w * longest + np.arange(n, dtype=np.int64)
                                                 for w, n in enumerate(lens)])).to(device)
        keys = torch.zeros(n_rows, longest, dtype=torch.bool, device=device)
        for w, n in enumerate(lens):
            keys[w, :n] = True
        keys = keys[:, None, None, :]
    base = model.base_model
    with torch.inference_mode():
        x = base.embeddings(input_ids=ids[None], token_type_ids=types[None], position_ids=pos[None])[0]  # [N, d]
        kept = frozen = None  # after the probe's layer: the indices computed, and every token's state
        for i, layer in enumerate(base.encoder.layer):
            sa = layer.attention.self
            heads, size = sa.num_attention_heads, sa.attention_head_size
            if per_window and probe is not None and i == probe.layer:
                from qa.reader.token_pruning import kept_tokens

                types_np = np.concatenate([np.asarray(r[1]) for r in rows])
                kept_np = kept_tokens(probe.scores(x), types_np, lens, probe.keep)
                kept = torch.from_numpy(kept_np).to(device)
                window_of = np.searchsorted(np.asarray(bounds[1:]), kept_np, side="right")
                q_bounds = np.concatenate([[0], np.cumsum(np.bincount(window_of, minlength=n_rows))]).tolist()
                frozen, x = x, x[kept]
            # queries from the tokens computed; keys and values from every token (the same ones unless pruning)
            every = frozen if kept is not None else x
            q, k, v = sa.query(x), sa.key(every), sa.value(every)
            if per_window:
                a = _attend(q, k, v, q_bounds if kept is not None else bounds, bounds, heads, size, sa.scaling)
            else:
                blocks = []
                for t in (q, k, v):
                    block = t.new_zeros(n_rows * longest, heads * size)
                    block[place] = t
                    blocks.append(block.view(n_rows, longest, heads, size).transpose(1, 2))
                a = F.scaled_dot_product_attention(*blocks, attn_mask=keys, scale=sa.scaling)
                a = a.transpose(1, 2).reshape(n_rows * longest, heads * size)[place]
            attended = layer.attention.output(a, x)
            x = layer.output(layer.intermediate(attended), attended)
            if kept is not None and i + 1 < len(base.encoder.layer):
                frozen.index_copy_(0, kept, x)  # the next layer's keys and values see the new states
        logits = model.qa_outputs(x).float().cpu().numpy()  # [N or kept, 2]
        if kept is not None:
            from qa.reader.token_pruning import DROPPED_LOGIT

            full = np.full((len(ids), 2), DROPPED_LOGIT, dtype=np.float32)
            full[kept_np] = logits
            logits = full
    out, o = [], 0
    for n in lens:
        out.append((logits[o : o + n, 0].copy(), logits[o : o + n, 1].copy()))
        o += n
    return out


def matches_padded(model, device: str = "cpu", tolerance: float | None = None) -> bool:
    """On a probe of three windows of different lengths, do the packed logits equal the padded forward's?

    ``tolerance`` is relative to the largest logit: by default 1e-3 for fp32 weights, 2e-2 for bf16/fp16 ones
    (their rounding moves a logit by ~0.5 % between two batch shapes of the padded forward itself)."""
    from qa.reader.forward import forward_logits

    if not supports(model):
        return False
    if tolerance is None:
        import torch

        tolerance = 1e-3 if next(model.parameters()).dtype == torch.float32 else 2e-2
    rng = np.random.default_rng(0)
    vocab = int(getattr(model.config, "vocab_size", 1000))
    rows = []
    for n in (7, 19, 12):
        ids = rng.integers(1000, max(1001, vocab - 1), size=n)
        rows.append((ids, np.r_[np.zeros(4, dtype=np.int64), np.ones(n - 4, dtype=np.int64)]))
    width = max(len(r[0]) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    tt = np.zeros_like(ids)
    for i, (a, b) in enumerate(rows):
        ids[i, : len(a)], mask[i, : len(a)], tt[i, : len(a)] = a, 1, b
    try:
        s, e = forward_logits(model, ids, mask, tt, device, False)
        packed = packed_logits(model, rows, device)
    except Exception:  # noqa: BLE001 - any layout this walk does not understand: use the padded forward
        return False
    scale = max(1.0, float(np.abs(s).max()), float(np.abs(e).max()))
    return all(np.abs(ps - s[i, : len(ps)]).max() <= tolerance * scale
               and np.abs(pe - e[i, : len(pe)]).max() <= tolerance * scale for i, (ps, pe) in enumerate(packed))
