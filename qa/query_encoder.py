"""A question's embedding without the generic encode() path: one short text through the encoder's layers.

``SentenceTransformer.encode`` is built for batches: for one question of ~15 tokens most of its ~10 ms on two
AVX2 cores goes to the framework around the six layers (feature dictionaries, padding masks, module hooks), not
to the arithmetic. :class:`QueryEncoder` walks a BERT-layout encoder directly -- embeddings, then per layer the
query/key/value projections, unmasked scaled-dot-product attention (one text has no padding), the output and
feed-forward blocks -- and mean-pools and L2-normalises as the shipped all-MiniLM-L6-v2 pipeline does
(docs/benchmarks.md: embed_query ~10 -> ~7 ms).

It is used only where it gives the same vector: :meth:`QueryEncoder.matches` compares it with ``encode`` on a few
mixed-case probe texts when the embedder warms up, and any model it does not understand (another layout,
another pooling, a lower-casing step of its own) keeps ``encode`` (qa.embedding.Embedder).
"""

from __future__ import annotations

import numpy as np

PROBES = ("Who was Kazakhstan's first President?", "How many CSTO troops arrived in Almaty on 6 January 2022?",
          "a")


class QueryEncoder:
    """``QueryEncoder(sentence_transformer)``: ``encode(text)`` -> L2-normalised float32 vector."""

    def __init__(self, st_model) -> None:
        self.tokenizer = st_model.tokenizer
        self.max_length = int(st_model.max_seq_length)
        self.model = st_model[0].auto_model
        self.layers = None  # the transformer layers walked; None: the model's own (qa.query_int8 sets int8 ones)

    @staticmethod
    def supports(st_model) -> bool:
        """Whether ``st_model`` is a transformer with the BERT layout this walk needs (checked by attribute)."""
        try:
            base = st_model[0].auto_model
            layer = base.encoder.layer[0]
            sa = layer.attention.self
            return (all(hasattr(x, "forward") for x in (base.embeddings, sa.query, sa.key, sa.value,
                                                         layer.attention.output, layer.intermediate, layer.output))
                    and hasattr(sa, "attention_head_size") and hasattr(sa, "scaling")
                    and st_model.tokenizer is not None)
        except (AttributeError, IndexError, TypeError, KeyError):
            return False

    def encode(self, text: str) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        ids = self.tokenizer(text, truncation=True, max_length=self.max_length)["input_ids"]
        n = len(ids)
        base = self.model
        device = base.embeddings.word_embeddings.weight.device
        with torch.inference_mode():
            t = torch.tensor([ids], dtype=torch.long, device=device)
            x = base.embeddings(input_ids=t, token_type_ids=torch.zeros_like(t))[0]  # [n, hidden]
            for layer in base.encoder.layer if self.layers is None else self.layers:
                sa = layer.attention.self
                h, s = sa.num_attention_heads, sa.attention_head_size
                q, k, v = (f(x).view(1, n, h, s).transpose(1, 2) for f in (sa.query, sa.key, sa.value))
                a = F.scaled_dot_product_attention(q, k, v, scale=sa.scaling)[0].transpose(0, 1).reshape(n, h * s)
                attended = layer.attention.output(a, x)
                x = layer.output(layer.intermediate(attended), attended)
            v = x.float().mean(0)
            v = v / v.norm().clamp_min(1e-12)
            return v.cpu().numpy().astype(np.float32)

    def matches(self, reference, tolerance: float = 1e-4) -> bool:
        """Whether :meth:`encode` gives ``reference(text)`` (the framework's vector) on the probe texts."""
        try:
            return all(float(np.abs(self.encode(p) - reference(p)).max()) <= tolerance for p in PROBES)
        except Exception:  # noqa: BLE001 - any layout this walk does not understand keeps the framework's path
            return False
