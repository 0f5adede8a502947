"""Retrievers: dense (FAISS), BM25 and hybrid (reciprocal rank fusion)."""
