"""Document stores behind one protocol (:mod:`qa.store.protocol`): ``faiss`` (default, the versioned
index folder) and ``milvus`` (Milvus Lite in-process or a Milvus server). ``QA_STORE`` picks one;
:func:`open_store` opens it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qa.store.protocol import BACKENDS, DocumentReader, DocumentStore, Hit, chunk_id

__all__ = ["BACKENDS", "DocumentReader", "DocumentStore", "Hit", "chunk_id", "open_store", "milvus_uri"]


def milvus_uri(settings: Any) -> str:
    """``QA_MILVUS_URI``, or ``<QA_INDEX_DIR>/milvus.db`` (Milvus Lite in this process) when unset."""
    return settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")


def open_store(settings: Any, model_id: str, dimension: int, chunking: dict[str, Any]) -> DocumentStore:
    """The store ``settings.store`` names, for vectors of ``model_id``/``dimension`` and chunks cut
    with ``chunking`` (a store holding others raises qa.index_store.IndexStaleError)."""
    if settings.store == "faiss":
        from qa.store.faiss_store import FaissDocumentStore

        return FaissDocumentStore(settings, model_id, dimension, chunking)
    if settings.store == "milvus":
        from pymilvus.exceptions import MilvusException

        from qa.index_store import IndexLoadError
        from qa.store.milvus_store import MilvusDocumentStore

        uri = milvus_uri(settings)
        try:
            if "://" not in uri:
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            return MilvusDocumentStore(uri, model_id, dimension, chunking, settings.milvus_collection,
                                       settings.milvus_token)
        except (OSError, MilvusException) as e:  # a folder that cannot be made, a server that does not answer
            if isinstance(e, OSError):
                why = ("a folder above it is a file" if isinstance(e, (FileExistsError, NotADirectoryError))
                       else e.strerror or type(e).__name__)
            else:
                why = (str(getattr(e, "message", "") or e).strip().splitlines() or [type(e).__name__])[0]
            raise IndexLoadError(
                f"cannot open the Milvus store at {uri} ({why}); set "
                "QA_MILVUS_URI to a .db file in a folder you can write, or to http://host:port of a running Milvus "
                "server (with QA_MILVUS_TOKEN if it wants credentials)") from None
    raise ValueError(f"unknown QA_STORE {settings.store!r}: expected one of {', '.join(BACKENDS)}")
