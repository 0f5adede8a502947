"""Bulk indexing with Ray Data: ``qa index --ray`` (optional: ``pip install 'ray[data]==2.60.0'``,
``make setup`` installs it).

The corpus folder is read and converted here (the same rules as ``qa index``: unreadable files are
skipped and named); documents that are new or changed (sha256 of the bytes or of the extracted text)
then flow through a Ray Data pipeline: chunking (one actor per CPU, each with the embedder's
tokenizer) and embedding (``map_batches`` over an actor pool, each actor holding one copy of the
embedding model). The chunks and vectors come back and are written through the document store
protocol (``write_documents``: one FAISS version, or one Milvus write per document); without
explicit paths, stored documents whose file is gone are deleted (in the same FAISS version). A FAISS
index built with other chunking parameters is chunked and embedded again whole, as ``qa index`` does. ``ray.init`` starts a local Ray
with ``--ray-cpus`` CPUs unless ``RAY_ADDRESS`` names a cluster (whose workers must have this
package and the embedding model installed).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.index_store import BuildReport
from qa.ingest import SkippedFile, load_corpus
from qa.store.protocol import TrashBin, new_trash_entry, store_problem
from qa.types import Chunk, Document
from qa.writes import _now


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _reuse_problem(store: Any) -> str | None:
    """Why ``store``'s chunks and vectors cannot be kept (FAISS: the index was built with another chunking);
    None: they can (a Milvus store holding another chunking refuses to open)."""
    problem = getattr(store, "reuse_problem", None)
    return problem() if callable(problem) else None


def _stored_document(store: Any, doc_id: str) -> Document:
    """A stored document as the store serves it (its text, checksums, converter, page starts)."""
    info = store.documents[doc_id]
    return Document(doc_id, store.document_text(doc_id), info.sha256, info.size, info.converter,
                    info.converter_version, tuple(store.page_starts(doc_id)))


class _ChunkDocs:
    """Ray Data callable class: a document row -> its chunk rows (offsets; text sliced later)."""

    def __init__(self, settings: Any) -> None:
        from qa.chunking import Chunker

        self.chunker = Chunker.from_settings(settings)

    def __call__(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        doc = Document(row["id"], row["text"], "", 0)
        return [{"document": c.document, "ordinal": i, "start": c.start, "end": c.end, "text": c.text}
                for i, c in enumerate(self.chunker.chunk(doc))]


class _Embed:
    """Ray Data callable class: a batch of chunk rows -> the same rows with their vectors (and the
    wall-clock start and end of the batch's embedding, for the throughput figure)."""

    def __init__(self, settings: Any, threads: int = 1) -> None:
        import torch

        from qa.embedding import Embedder

        torch.set_num_threads(max(1, int(threads)))  # explicit: not whatever OMP_NUM_THREADS the worker got
        self.embedder = Embedder(settings.resolved_embedding_model(), settings.embedding_batch_size).warm_up()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        t0 = time.time()
        texts = [str(t) for t in batch["text"]]
        vectors = self.embedder.embed_documents(texts)
        t1 = time.time()
        n = len(texts)
        return {"document": batch["document"], "ordinal": batch["ordinal"], "start": batch["start"],
                "end": batch["end"], "vector": list(np.asarray(vectors, dtype=np.float32)),
                "t_embed0": np.full(n, t0), "t_embed1": np.full(n, t1)}


def cluster_address() -> str | None:
    """The Ray cluster ``RAY_ADDRESS`` names (None: unset, or ``local``: ``ray.init`` starts a local Ray)."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    return address if address and address != "local" else None


def check_ray_cpus(num_cpus: int | None) -> None:
    """ValueError when ``num_cpus`` is given but Ray is a cluster's (``RAY_ADDRESS``): ray.init would refuse it."""
    if num_cpus is not None and cluster_address() is not None:
        raise ValueError(f"--ray-cpus sizes a local Ray; with RAY_ADDRESS={cluster_address()} the cluster's own CPUs "
                         "are used: leave --ray-cpus out (or unset RAY_ADDRESS)")


def _init_ray(num_cpus: int | None) -> None:
    """Join the cluster of ``RAY_ADDRESS`` (whose CPUs and object store are its own: ray.init refuses both), or
    start a local Ray with ``num_cpus`` CPUs and a small object store."""
    import ray

    check_ray_cpus(num_cpus)
    if cluster_address() is not None:
        ray.init(log_to_driver=False, configure_logging=False)
        return
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False, object_store_memory=256 * 1024 * 1024)


@dataclass
class RayStats:
    """How a ``ray_index`` run went: ``workers`` embedding actors with ``threads`` torch threads each;
    ``startup_s``: ray.init; ``pipeline_s``: from after ray.init to the last row back (actor start-up and
    model loading included); ``embed_s``: from the first batch's embedding start to the last one's end
    (across actors; start-up and model loading excluded); ``chunks``: chunks embedded."""

    workers: int = 0
    threads: int = 0
    cpus: int = 0
    chunks: int = 0
    startup_s: float = 0.0
    pipeline_s: float = 0.0
    embed_s: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.embed_s if self.embed_s > 0 else 0.0

    @property
    def pipeline_chunks_per_s(self) -> float:
        return self.chunks / self.pipeline_s if self.pipeline_s > 0 else 0.0

    def line(self) -> str:
        return (f"Ray: {self.workers} embedding worker(s) x {self.threads} torch thread(s) on {self.cpus} CPU(s); "
                f"{self.chunks} chunks embedded in {self.embed_s:.1f}s ({self.chunks_per_s:.1f} chunks/s, first batch "
                f"to last; start-up excluded); pipeline {self.pipeline_s:.1f}s after ray.init "
                f"({self.pipeline_chunks_per_s:.1f} chunks/s); ray.init {self.startup_s:.1f}s")


def _keep(store: Any, doc_id: str, reason: str) -> None:
    """A store with a trash (Milvus) may hold the only copy of a document the corpus folder lacks or has older bytes
    of (an upload, a PUT): it goes to the trash before the folder's state is written over it."""
    if isinstance(store, TrashBin):
        store.trash_document(doc_id, new_trash_entry(), reason, _now())


def ray_index(settings: Any, store: Any, corpus: Path, paths: list[Path] | None = None, *,
              num_cpus: int | None = None, batch_size: int = 64, threads: int = 1,
              workers: int | None = None, stats: RayStats | None = None) -> BuildReport:
    """Index ``corpus`` (or ``paths`` under it) into ``store`` with Ray Data (module docstring).

    Embedding runs in a fixed pool of ``workers`` actors (default: the cluster's CPUs // ``threads``),
    each reserving ``threads`` CPUs and running torch with ``threads`` threads. The chunking actors
    (tokenizer only) reserve no CPU, so they cannot keep an embedding actor from starting. ``stats``,
    if given, is filled in (RayStats)."""
    import ray
    import ray.data

    t0 = time.perf_counter()
    report = BuildReport(index_dir=str(getattr(store, "uri", None) or getattr(store, "index_dir", "")))
    docs, report.skipped = load_corpus(Path(corpus), paths)
    stored = store.documents
    # another chunking than the stored one's: every document is chunked and embedded again (as `qa index` does)
    report.full_rebuild_reason = _reuse_problem(store)
    todo: list[Document] = []
    for doc in docs:
        old = stored.get(doc.id)
        problem = store_problem(store, doc)
        if report.full_rebuild_reason is None and old is not None and old.sha256 == doc.sha256 and \
                _text_sha(store.document_text(doc.id)) == _text_sha(doc.text):
            report.reused.append(doc.id)
        elif problem is not None:  # skipped and named before any Ray work (it failed the write of every document)
            report.skipped.append(SkippedFile(path=doc.id, reason=problem))
        else:
            todo.append(doc)
            (report.changed if old is not None else report.added).append(doc.id)
    present = {d.id for d in docs}
    if report.full_rebuild_reason is not None and paths is not None:  # the documents outside the paths stay
        todo.extend(_stored_document(store, doc_id) for doc_id in sorted(set(stored) - present))
        report.changed.extend(sorted(set(stored) - present))
    removals = sorted(set(stored) - present) if paths is None else []

    items: list[tuple[Document, list[Chunk], np.ndarray]] = []
    if todo:
        stats = stats if stats is not None else RayStats()
        started = not ray.is_initialized()
        t_init = time.perf_counter()
        if started:
            _init_ray(num_cpus)
        stats.startup_s = time.perf_counter() - t_init
        try:
            t_pipe = time.perf_counter()
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            threads = max(1, int(threads))
            if threads > cpus:
                raise ValueError(f"{threads} threads per embedding worker, but Ray has only {cpus} CPU(s)")
            n_workers = max(1, int(workers) if workers else cpus // threads)
            if n_workers * threads > cpus:
                raise ValueError(f"{n_workers} embedding workers x {threads} threads need {n_workers * threads} "
                                 f"CPUs; Ray has {cpus}")
            ds = ray.data.from_items([{"id": d.id, "text": d.text} for d in todo])
            ds = ds.flat_map(_ChunkDocs, fn_constructor_args=(settings,), num_cpus=0,
                             compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, cpus // 4)))
            ds = ds.map_batches(_Embed, fn_constructor_args=(settings, threads), batch_size=batch_size,
                                num_cpus=threads, batch_format="numpy",
                                compute=ray.data.ActorPoolStrategy(min_size=n_workers, max_size=n_workers))
            rows = ds.take_all()
            stats.pipeline_s = time.perf_counter() - t_pipe
            stats.workers, stats.threads, stats.cpus, stats.chunks = n_workers, threads, cpus, len(rows)
            if rows:
                stats.embed_s = max(float(r["t_embed1"]) for r in rows) - min(float(r["t_embed0"]) for r in rows)
        finally:
            if started:
                ray.shutdown()
        per_doc: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            per_doc[str(r["document"])].append(r)
        for doc in todo:
            rs = sorted(per_doc.get(doc.id, []), key=lambda r: int(r["ordinal"]))
            chunks = [Chunk(doc.id, int(r["start"]), int(r["end"]), doc.text[int(r["start"]):int(r["end"])]) for r in rs]
            vectors = np.stack([np.asarray(r["vector"], np.float32) for r in rs]) if rs else \
                np.zeros((0, int(store.dimension)), np.float32)
            items.append((doc, chunks, vectors))
        report.chunks_embedded = len(rows)
    if items or removals:
        # a store with a trash (Milvus) may hold the only copy of what is written over or removed: kept first
        for doc, _, _ in items:
            if doc.id in stored and stored[doc.id].sha256 != doc.sha256:
                _keep(store, doc.id, "replaced")
        for doc_id in removals:
            _keep(store, doc_id, "deleted")
        store.write_documents(items, removals=removals)  # FAISS: one new version
        report.removed = removals
    report.documents = store.count_documents()
    report.chunks = store.count_chunks()
    report.seconds = time.perf_counter() - t0
    return report

