"""The served extractive reader: question + retrieved passages -> answers citing document offsets."""

from __future__ import annotations

import json
import logging
import threading
from functools import partial
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qa import timing
from qa.reader.aggregate import Located, group_answers
from qa.reader.decode import SpanCandidate, decode, decode_shared, encode_windows
from qa.verifier.features import answer_features, key_of
from qa.types import Answer, Citation, Passage

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5  # used only when the model folder carries no calibrated threshold
_SENTENCE_END = ".!?。！？\n"


@dataclass
class ReaderOutput:
    answers: list[Answer]  # best first; empty when abstaining
    answer_found: bool
    no_answer_score: float  # 1 - best span probability
    best_guess: Answer | None = None  # the top answer even when abstaining (for evaluation/diagnostics)
    candidates: int = 0
    windows: int = 0
    passages_read: int = 0  # fewer than given when the early exit skipped the rest
    extra: dict = field(default_factory=dict)


def sentence_bounds(text: str, start: int, end: int, max_chars: int = 300) -> tuple[int, int]:
    """The sentence (or line) around text[start:end], at most max_chars beyond the span on each side."""
    lo = max(0, start - max_chars)
    s = start
    while s > lo:
        ch = text[s - 1]
        if ch == "\n" or (ch in _SENTENCE_END and s < start and text[s].isspace()):
            break
        s -= 1
    hi = min(len(text), end + max_chars)
    e = end
    while e < hi:
        ch = text[e]
        if ch == "\n":
            break
        e += 1
        if ch in _SENTENCE_END and (e >= len(text) or text[e].isspace()):
            break
    while s < start and text[s].isspace():
        s += 1
    while e > end and text[e - 1].isspace():
        e -= 1
    return s, e


def _concat_windows(a, b, shift: int):
    """The windows of ``a`` then ``b`` (``b``'s contexts numbered from ``shift``)."""
    from qa.reader.decode import Windows

    ids = [list(x) for x in a.encoding["input_ids"]] + [list(x) for x in b.encoding["input_ids"]]
    tt = [list(x) for x in a.encoding["token_type_ids"]] + [list(x) for x in b.encoding["token_type_ids"]]
    spans = None if a.word_spans is None or b.word_spans is None else a.word_spans + b.word_spans
    return Windows({"input_ids": ids, "token_type_ids": tt}, list(a.context_of) + [c + shift for c in b.context_of],
                   a.offsets + b.offsets, spans)


# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) below AVX512_CORE_BF16: bf16 is converted in software there
_ONEDNN_ISAS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                                       "AVX512_CORE_VNNI"})


def bf16_native_from(onednn_bf16: bool, cpu_bf16: bool, isa_limit: str | None) -> bool:
    """Native bf16 = oneDNN takes bf16 (``onednn_bf16``), the CPU has AVX-512 BF16 or AMX instructions
    (``cpu_bf16``), and no ``ONEDNN_MAX_CPU_ISA`` limit keeps oneDNN below them. oneDNN's own check alone also says
    yes on AVX-512 CPUs without BF16 (Skylake-SP, Cascade Lake, Ice Lake servers), where it converts in software:
    the reader's ask took ~3x as long in bf16 as in fp32 there (docs/benchmarks.md#avx-512-without-bf16-15-2026-12-07)."""
    return bool(onednn_bf16 and cpu_bf16 and (not isa_limit or isa_limit.strip().upper() not in _ONEDNN_ISAS_WITHOUT_BF16))


def native_bf16() -> bool:
    """True when this CPU computes bf16 natively (on x86: AVX-512 BF16 or AMX, and oneDNN may use them)."""
    import os
    import platform

    import torch

    try:
        onednn = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        cpu = True  # elsewhere (aarch64) oneDNN's check already is the CPU's own bf16 instructions
    else:
        cpu = _x86_bf16_instructions()
    return bf16_native_from(onednn, cpu, os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"))


def _x86_bf16_instructions() -> bool:
    """Whether this x86 CPU has the AVX-512 BF16 or AMX instructions."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a torch without these probes: the CPU's flags as Linux lists them
        try:
            flags = Path("/proc/cpuinfo").read_text(errors="replace").split()
        except OSError:
            flags = []
        return "avx512_bf16" in flags or "amx_bf16" in flags


# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) that keep it off the AMX tiles although the CPU has them
_ONEDNN_ISAS_WITHOUT_AMX = _ONEDNN_ISAS_WITHOUT_BF16 | {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512"}


def amx_usable_from(cpu_amx: bool, isa_limit: str | None) -> bool:
    """AMX usable = the CPU has AMX tiles and no ``ONEDNN_MAX_CPU_ISA`` limit keeps oneDNN below them."""
    return bool(cpu_amx and (not isa_limit or isa_limit.strip().upper() not in _ONEDNN_ISAS_WITHOUT_AMX))


def _x86_amx() -> bool:
    """Whether this x86 CPU has AMX tiles (Sapphire Rapids and later Xeons)."""
    import torch

    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a torch without the probe: the CPU's flags as Linux lists them
        try:
            flags = Path("/proc/cpuinfo").read_text(errors="replace").split()
        except OSError:
            flags = []
        return "amx_tile" in flags


def bf16_matrix_units() -> bool:
    """True when this CPU's native bf16 runs on matrix units (AMX on x86; outside x86, oneDNN's bf16 check is
    the CPU's own bf16 instructions and is trusted). On x86 CPUs with AVX-512 BF16 but no AMX (AMD Zen 4 and 5,
    Cooper Lake Xeons) bf16 is native but no faster than int8 on the VNNI instructions they also have: on a
    2-core Zen 4 EPYC the ask took 0.58-0.63x bf16's time in int8-torch (docs/benchmarks.md#zen-4-int8-torch-as-auto-15-2026-12-07)."""
    import os
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    return amx_usable_from(_x86_amx(), os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"))


def auto_cpu_bf16(model_dir: Path) -> bool:
    """What ``QA_READER_PRECISION=auto`` serves on this CPU: bf16 (True) where bf16 is native and runs on matrix
    units (AMX); on a CPU with native bf16 but no AMX, int8-torch (False) when ``model_dir`` has int8 scales for
    its weights and bf16 otherwise; without native bf16 (AVX2, AVX-512 without BF16) never bf16 (int8-torch,
    else fp32: the caller decides)."""
    if not native_bf16():
        return False
    if bf16_matrix_units():
        return True
    from qa.reader.int8_torch import Int8Error, load_scales

    try:
        load_scales(model_dir)
    except Int8Error as exc:
        log.info("QA_READER_PRECISION=auto: bf16 on this CPU, not int8-torch (%s)", exc)
        return True
    return False


def bf16_native_on(device: str) -> bool:
    """True when bf16 matrix products are native on `device` (a CUDA GPU with bf16, or a CPU with
    AVX-512 BF16 / AMX). Elsewhere bf16 falls back to a reference kernel: about 30x slower than fp32 when
    training on a 2-core AVX2 CPU (measured: 100+ s per step instead of ~4 s)."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return native_bf16()


def cuda_precision(precision: str, bf16_supported: bool) -> str:
    """The reader's weights on a CUDA GPU for a ``QA_READER_PRECISION`` value: half precision unless fp32 is
    asked for, bf16 where the GPU has it (Ampere and later), else fp16."""
    if precision == "fp32":
        return "fp32"
    return "bf16" if precision == "bf16" or bf16_supported else "fp16"


# QA_READER_PRECISION values: int8 = static int8 on ONNX Runtime (qa.reader.int8); int8-torch = smoothed int8
# linear layers on PyTorch's FBGEMM kernels (qa.reader.int8_torch); both CPU only. auto: bf16 on a CPU with native
# bf16 with matrix units (AMX), int8-torch on other x86 CPUs when the reader folder has int8_torch.json for its
# weights, else bf16 where it is native and fp32 where not (auto_cpu_bf16); on a GPU bf16/fp16
PRECISIONS = ("auto", "bf16", "fp32", "int8", "int8-torch")


class ExtractiveReader:
    """Loads the shipped span-extraction model once; ``run`` batches all windows of a question."""

    def __init__(self, model_dir: str | Path, max_length: int = 256, stride: int = 96, max_answer_tokens: int = 30,
                 n_best: int = 20, threshold: float | None = None, batch_size: int = 16, precision: str = "auto",
                 first_passages: int = 0, early_exit_score: float = 0.9, min_confidence: float | None = None,
                 use_verifier: bool = True, device: str = "cpu", batch_windows: int = 0,
                 batch_wait_ms: float = 2.0, pretokenised: bool = True, early_exit_by: str = "span",
                 int8_cache_dir: str | Path | None = None, backend: str = "torch",
                 openvino_cache_dir: str | Path | None = None, packed: bool = True, token_keep: float | None = None):
        self.model_dir = Path(model_dir)
        self.max_length = max_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.n_best = n_best
        self._threshold_override = threshold
        self.batch_size = batch_size
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.precision = precision
        self.first_passages = first_passages
        self.early_exit_score = early_exit_score
        if early_exit_by not in ("span", "confidence"):
            raise ValueError(f"early_exit_by must be span or confidence, not {early_exit_by!r}")
        # what early_exit_score is compared with: the best span's probability (span) or the best answer's
        # calibrated confidence as served (confidence: the verifier's score; the cascade keeps the logits)
        self.early_exit_by = early_exit_by
        self.bf16 = precision == "bf16"
        self.fp16 = False  # CUDA without bf16: fp16 weights
        self.requested_device = device  # auto | cpu | cuda (qa.device.resolve_device at warm_up)
        self.device = "cpu"  # after warm_up: where the model runs
        self.runtime = ""  # after warm_up: "torch-bf16", "torch-int8" or "torch-fp32" (CPU), "torch-cuda-bf16|fp16|fp32", "openvino-fp32|bf16", "onnxruntime-int8"
        self.threshold = threshold if threshold is not None else DEFAULT_THRESHOLD
        self.temperature = 1.0  # from reader_config.json (fitted by qa export-reader)
        self.min_confidence_override = min_confidence
        self.min_confidence = min_confidence if min_confidence is not None else 0.5
        self.use_verifier = use_verifier
        self.verifier = None  # qa.verifier.model.Verifier, from verifier.json beside the weights
        self.verify_top = 5  # answers the verifier scores (it may reorder them)
        self.shared = False  # shared-normalisation decoding (reader_config.json "normalisation": "shared")
        self.model = None
        self.int8 = None  # qa.reader.int8.Int8Forward when precision == "int8" (ONNX Runtime, CPU)
        self.int8_cache_dir = int8_cache_dir
        if backend not in ("torch", "openvino"):
            raise ValueError(f"backend must be torch or openvino, not {backend!r}")
        if backend == "openvino" and precision == "int8":
            raise ValueError("QA_READER_PRECISION=int8 runs on ONNX Runtime: use it with QA_READER_BACKEND=torch")
        if backend == "openvino" and precision == "int8-torch":
            raise ValueError("QA_READER_PRECISION=int8-torch runs on PyTorch: use it with QA_READER_BACKEND=torch")
        self.backend = backend
        self.openvino = None  # qa.reader.openvino_rt.OpenVinoForward when backend == "openvino"
        self.openvino_cache_dir = openvino_cache_dir
        # windows of different lengths in one forward without padding (qa.reader.packed; torch backend only),
        # used when asked for and the loaded model gives the padded forward's logits on a probe (warm_up)
        self.packed = packed
        # late-layer token pruning (qa.reader.token_pruning) in the CPU's packed forward: the probe beside the
        # weights, loaded at warm_up; token_keep overrides its share of tokens computed (None: the file's; 1: off)
        if token_keep is not None and not 0.0 < token_keep <= 1.0:
            raise ValueError(f"token_keep must be within (0, 1], not {token_keep}")
        self.token_keep = token_keep
        self.token_probe = None
        self.tokenizer = None
        # stored passage tokens (qa.reader.pretokenised) used when given and this tokenizer follows the pair
        # template they assume (checked at warm_up); fingerprint: which stored tokens are this tokenizer's
        self.pretokenised = pretokenised
        self.tokenizer_fingerprint = ""
        self.card: dict = {}
        self._lock = threading.Lock()
        # A fast tokenizer is not thread-safe: each call re-sets its truncation state, so concurrent questions
        # (the API's worker threads) could get each other's settings and wrong windows (measured: 18 of 240
        # concurrent encodings came back untruncated). Tokenising takes ~3 ms of an ask: one at a time.
        self._tokenizer_lock = threading.Lock()
        # Windows of concurrent questions in one forward (qa.batcher): at most batch_windows per forward,
        # collected for up to batch_wait_ms. 0: every question runs its own forward.
        self.batcher = None
        if batch_windows:
            from qa.batcher import ForwardBatcher

            # every window padded to max_length: a window's logits then do not depend on the other windows of its
            # batch (fp32, measured on CPU), so a question gets the same answer alone or batched with others
            self.batcher = ForwardBatcher(partial(self._forward_rows, batch_size=max(batch_size, batch_windows),
                                                  width=max_length),
                                          wait_ms=batch_wait_ms, max_rows=batch_windows)

    @classmethod
    def from_settings(cls, settings, model_dir: str | Path | None = None) -> "ExtractiveReader":
        """The reader as `Settings` configure it (QA_READER_* environment variables)."""
        s = settings
        return cls(
            model_dir or s.reader_model_dir, max_length=s.reader_max_length, stride=s.reader_stride,
            max_answer_tokens=s.reader_max_answer_tokens, n_best=s.reader_n_best, threshold=s.abstain_threshold,
            precision=s.reader_precision, first_passages=s.reader_first_passages,
            early_exit_score=s.reader_early_exit_score, min_confidence=s.min_confidence,
            use_verifier=s.verifier, device=s.device, batch_windows=s.reader_batch_windows,
            batch_wait_ms=s.reader_batch_wait_ms, pretokenised=s.reader_pretokenised,
            early_exit_by=s.reader_early_exit_by, int8_cache_dir=s.reader_int8_cache,
            backend=s.reader_backend, openvino_cache_dir=s.reader_openvino_cache, packed=s.reader_packed,
            token_keep=s.reader_token_keep,
        )

    # -- loading -----------------------------------------------------------------------------
    def warm_up(self) -> None:
        if self.model is not None:
            return
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        if not (self.model_dir / "config.json").exists():
            from qa.config import ModelNotFoundError

            raise ModelNotFoundError(
                f"reader model not found in {self.model_dir} (expected config.json and model.safetensors; "
                "set QA_READER_MODEL_DIR or train one with `qa train-reader`)"
            )
        cfg_path = self.model_dir / "reader_config.json"
        self.card = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        if self._threshold_override is None and "threshold" in self.card:
            self.threshold = float(self.card["threshold"])
        self.temperature = float(self.card.get("temperature", 1.0))
        self.shared = self.card.get("normalisation") == "shared"
        if self.use_verifier:
            from qa.verifier.model import Verifier

            self.verifier = Verifier.load(self.model_dir)
            if self.verifier is not None and self.min_confidence_override is None:
                self.min_confidence = self.verifier.min_confidence
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        if self.pretokenised:
            from qa.reader import pretokenised

            try:
                self.tokenizer_fingerprint = pretokenised.tokenizer_fingerprint(self.tokenizer)
            except Exception:  # noqa: BLE001 - not a fast tokenizer: always tokenise at query time
                self.tokenizer_fingerprint = ""
            if self.tokenizer_fingerprint and not pretokenised.matches_tokenizer(self.tokenizer, self.max_length,
                                                                                 self.stride):
                self.tokenizer_fingerprint = ""
            self.pretokenised = bool(self.tokenizer_fingerprint)
        from qa.device import resolve_device

        self.device = resolve_device(self.requested_device)
        if self.precision == "int8":
            if self.device != "cpu":
                raise ValueError(f"QA_READER_PRECISION=int8 runs on the CPU (ONNX Runtime), not on {self.device}; "
                                 "set QA_DEVICE=cpu, or QA_READER_PRECISION=auto on the GPU")
            from qa.reader.int8 import Int8Forward, model_path

            self.int8 = Int8Forward(model_path(self.model_dir, self.int8_cache_dir),
                                    threads=torch.get_num_threads())
            self.runtime = "onnxruntime-int8"
            self.model = self.int8  # loaded; the forward goes through ONNX Runtime
            self.packed = False
            return
        if self.backend == "openvino":
            if self.device != "cpu":
                raise ValueError(f"QA_READER_BACKEND=openvino runs on the CPU, not on {self.device}; set QA_DEVICE=cpu, "
                                 "or QA_READER_BACKEND=torch on the GPU")
            from qa.reader.openvino_rt import OpenVinoForward, model_path as openvino_model_path

            self.bf16 = self.precision == "bf16" or (self.precision == "auto" and native_bf16())
            kind = "bf16" if self.bf16 else "fp32"
            self.openvino = OpenVinoForward(openvino_model_path(self.model_dir, self.openvino_cache_dir),
                                            threads=torch.get_num_threads(), precision=kind)
            self.runtime = f"openvino-{kind}"
            self.model = self.openvino  # loaded; the forward goes through OpenVINO
            self.packed = False
            return
        if self.precision == "int8-torch" and self.device != "cpu":
            raise ValueError(f"QA_READER_PRECISION=int8-torch runs on the CPU, not on {self.device}; set "
                             "QA_DEVICE=cpu, or QA_READER_PRECISION=auto on the GPU")
        if self.device == "cuda":
            kind = cuda_precision(self.precision, bf16_native_on("cuda"))
            self.bf16, self.fp16 = kind == "bf16", kind == "fp16"
        elif self.precision == "auto":
            self.bf16 = auto_cpu_bf16(self.model_dir)
        model = AutoModelForQuestionAnswering.from_pretrained(str(self.model_dir), dtype=torch.float32)
        model.eval()
        kind = "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"
        self.runtime = f"torch-cuda-{kind}" if self.device == "cuda" else f"torch-{kind}"
        if self.bf16:
            # bf16 weights, cast once: ~15 % faster than fp32 weights under bf16 autocast (which casts every
            # weight on every forward), same EM/F1 (`qa export-reader` validates in this precision)
            model = model.to(torch.bfloat16)
        elif self.fp16:
            model = model.to(torch.float16)
        self.model = model.to(self.device)
        if self.packed:
            from qa.reader.packed import matches_padded

            self.packed = matches_padded(self.model, self.device)
            if not self.packed:
                log.warning("QA_READER_PACKED: this model's layers are not laid out as the packed forward expects "
                            "(or its logits differ on a probe); using the padded forward")
        if self.packed and self.device == "cpu" and (self.token_keep is not None or not self.bf16):
            # not by default in bf16: on CPUs with AMX the layers are cheap and pruning saved ~1 % of the ask for
            # 1.1 seed F1 (docs/reader.md#late-layer-token-pruning-2026-12-07); asked for, it runs there too
            from qa.reader import token_pruning

            cfg = self.model.config
            self.token_probe = token_pruning.load(self.model_dir, self.token_keep, cfg.hidden_size,
                                                  cfg.num_hidden_layers)
        if self.precision == "int8-torch" or (self.precision == "auto" and self.device == "cpu" and not self.bf16):
            # after the packed check (on the fp32 logits): a token's int8 layers depend on that token alone, so the
            # packed forward stays what the padded one computes. `auto` on a CPU without native bf16 (AVX2) takes
            # int8-torch too when the folder has int8 scales made for these weights: ~0.78x fp32's ask p50 on two
            # AVX2 cores, dev-42 forced F1 81.79 against 82.02 (docs/reader.md#int8-on-pytorch-int8-torch); else fp32
            from qa.reader.int8_torch import Int8Error, load_scales, quantize

            try:
                self.model = quantize(self.model, load_scales(self.model_dir))
                self.runtime = "torch-int8"
            except Int8Error as exc:
                if self.precision == "int8-torch":
                    raise
                log.info("QA_READER_PRECISION=auto: fp32 on this CPU, not int8-torch (%s)", exc)

    # -- inference ---------------------------------------------------------------------------
    def _logits(self, windows) -> tuple[np.ndarray, np.ndarray]:
        ids, types = windows.encoding["input_ids"], windows.encoding["token_type_ids"]
        n = len(windows.context_of)
        rows = [(ids[w], types[w]) for w in range(n)]
        # with a batcher, these windows may share one forward with other questions' windows
        logits = self.batcher.run(rows) if self.batcher is not None else self._forward_rows(rows)
        width = max(len(x) for x in ids)
        S = np.full((n, width), -1e9, dtype=np.float32)
        E = np.full((n, width), -1e9, dtype=np.float32)
        for w, (s, e) in enumerate(logits):
            S[w, : len(s)], E[w, : len(e)] = s, e
        return S, E

    def _forward_rows(self, rows: list, batch_size: int | None = None,
                      width: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """(start, end) logits of each window ``(input_ids, token_type_ids)``: windows sorted by length, run in
        batches of ``batch_size`` (default ``self.batch_size``) padded to the longest of each batch, or to
        ``width`` when given."""
        from qa.reader.forward import forward_logits

        size = batch_size or self.batch_size
        out: list = [None] * len(rows)
        order = sorted(range(len(rows)), key=lambda w: len(rows[w][0]))
        with self._lock:
            if self.packed and width is None and (self.token_probe is not None or len({len(r[0]) for r in rows}) > 1):
                # no padding in the position-wise layers (windows of one length have none to save, but the token
                # pruning, when on, runs here: a window's answer must not depend on its neighbours' lengths)
                from qa.reader.packed import packed_logits

                for b in range(0, len(rows), size):
                    idx = order[b : b + size]
                    for w, se in zip(idx, packed_logits(self.model, [rows[w] for w in idx], self.device,
                                                        probe=self.token_probe)):
                        out[w] = se
                return out
            for b in range(0, len(rows), size):
                idx = order[b : b + size]
                cols = max(width or 0, max(len(rows[w][0]) for w in idx))
                ids = np.zeros((len(idx), cols), dtype=np.int64)
                mask = np.zeros((len(idx), cols), dtype=np.int64)
                tt = np.zeros((len(idx), cols), dtype=np.int64)
                for r, w in enumerate(idx):
                    L = len(rows[w][0])
                    ids[r, :L], mask[r, :L], tt[r, :L] = rows[w][0], 1, rows[w][1]
                # the weights are already bf16/fp16 when asked for: no autocast needed
                if self.int8 is not None:
                    s, e = self.int8(ids, mask, tt)
                elif self.openvino is not None:
                    s, e = self.openvino(ids, mask, tt)
                else:
                    s, e = forward_logits(self.model, ids, mask, tt, self.device, False)
                for r, w in enumerate(idx):
                    L = len(rows[w][0])
                    out[w] = (s[r, :L].copy(), e[r, :L].copy())
        return out

    def encode(self, question: str, contexts: list[str], tokens: list | None = None):
        """The reader windows of ``question`` over ``contexts`` (qa.reader.decode.encode_windows); thread-safe.
        ``tokens``: the contexts' stored tokens (qa.reader.pretokenised.ContextTokens, None where not stored),
        which give the same windows without tokenising the contexts again."""
        use = (self.pretokenised and tokens is not None and len(tokens) == len(contexts)
               and any(t is not None for t in tokens))
        if use:
            from qa.reader.pretokenised import encode_windows_pretokenised

            # a stored entry that cannot be this context's (its offsets run past the text) is not used
            tokens = [t if t is not None and (len(t) == 0 or int(t.offsets[-1, 1]) <= len(c)) else None
                      for t, c in zip(tokens, contexts)]
        with self._tokenizer_lock:
            if use:
                return encode_windows_pretokenised(self.tokenizer, question, contexts, tokens, self.max_length,
                                                   self.stride)
            return encode_windows(self.tokenizer, question, contexts, self.max_length, self.stride)

    def _read(self, question: str, contexts: list[str], tokens: list | None = None):
        """The windows of ``contexts`` and their (start, end) logits."""
        with timing.stage("reader_tokenise"):
            windows = self.encode(question, contexts, tokens)
        with timing.stage("reader_forward"):
            S, E = self._logits(windows)
        return windows, S, E

    def _decode(self, windows, S: np.ndarray, E: np.ndarray) -> tuple[list[SpanCandidate], float]:
        with timing.stage("decode"):
            if self.shared:
                return decode_shared(S, E, windows, self.max_answer_tokens, self.n_best, self.temperature)
            cands, _ = decode(S, E, windows, self.max_answer_tokens, self.n_best, self.temperature)
            return cands, 1.0 - (cands[0].prob if cands else 0.0)

    def spans(self, question: str, contexts: list[str],
              tokens: list | None = None) -> tuple[list[SpanCandidate], float, int]:
        """n-best spans over all windows of all contexts (offsets into each context string), the question's
        null probability, and the number of windows read. A reader trained with shared normalisation
        (``"normalisation": "shared"`` in reader_config.json) is decoded with one softmax over all windows;
        older readers per window (null: 1 - the best span's probability)."""
        self.warm_up()
        if not contexts:
            return [], 1.0, 0
        windows, S, E = self._read(question, contexts, tokens)
        cands, null = self._decode(windows, S, E)
        return cands, null, len(windows.context_of)

    def run(self, question: str, passages: list[Passage], document_text, max_answers: int = 3,
            stored_tokens=None, cascade: tuple[int, float] | None = None) -> ReaderOutput:
        """Answer from retrieved passages (best first). ``document_text(doc_id)`` returns the full document text.
        ``stored_tokens(chunks, fingerprint)``: the chunks' tokens stored with the index
        (qa.index_store.IndexStore.reader_tokens), or None: the passages are tokenised here.

        With ``first_passages`` set, the best passages are read first; the others are read only when no span
        in them reaches ``early_exit_score`` (a weak first answer still gets every passage's evidence).
        ``cascade=(n, bar)``: this call only, the confidence cascade over the best ``n`` passages with exit
        score ``bar`` (the API's reading when busy, qa.config ``busy_first_passages``), whatever the settings.
        """
        self.warm_up()
        tokens = None
        if stored_tokens is not None and self.pretokenised and passages:
            tokens = stored_tokens([p.chunk for p in passages], self.tokenizer_fingerprint)
        if cascade is None and self.first_passages and self.early_exit_by == "confidence":
            cascade = (self.first_passages, self.early_exit_score)
        if cascade is not None and 0 < cascade[0] < len(passages):
            return self._cascade(question, passages, document_text, max_answers, tokens, *cascade)
        head = passages[: self.first_passages] if self.first_passages else passages
        cands, null, n_windows = self.spans(question, [p.chunk.text for p in head],
                                            tokens[: len(head)] if tokens is not None else None)
        n_read = len(head)
        if n_read < len(passages) and not (cands and cands[0].prob >= self.early_exit_score):
            # read everything at once: with shared normalisation one softmax must cover all windows
            cands, null, n_windows = self.spans(question, [p.chunk.text for p in passages], tokens)
            n_read = len(passages)
        return self._finish(question, passages, document_text, max_answers, cands, null, n_windows, n_read)

    def _finish(self, question, passages, document_text, max_answers, cands, null, n_windows, n_read,
                model: str = "full") -> ReaderOutput:
        located = []
        for c in cands:
            ch = passages[c.context_index].chunk
            located.append(Located(ch.document, ch.start + c.start, ch.start + c.end, c.prob, c.context_index))
        with timing.stage("aggregate"):
            out = self._assemble(question, located, document_text, max_answers, n_windows, null, n_read,
                                 passages[:n_read], model)
        out.passages_read = n_read
        return out

    def _cascade(self, question, passages, document_text, max_answers, tokens, n: int, bar: float) -> ReaderOutput:
        """Early exit on the calibrated confidence (``early_exit_by="confidence"``): read the best ``n``
        passages and answer from them when the best answer's confidence (the verifier's, as served) reaches
        ``bar``; else read the other passages too and decode every window together (the first passages' logits
        are kept, not recomputed)."""
        texts = [p.chunk.text for p in passages]
        w1, S1, E1 = self._read(question, texts[:n], tokens[:n] if tokens is not None else None)
        cands, null = self._decode(w1, S1, E1)
        # the verifier's model of first-passage reads when it has one (`qa train-verifier --first-passages`): a
        # confident answer from one passage is worth less than the same features after every passage was read
        first = "first" if self.verifier is not None and self.verifier.has("first") else "full"
        out = self._finish(question, passages, document_text, max_answers, cands, null, len(w1.context_of), n,
                           first)
        if out.best_guess is not None and out.best_guess.score >= bar:
            return out
        w2, S2, E2 = self._read(question, texts[n:], tokens[n:] if tokens is not None else None)
        windows = _concat_windows(w1, w2, n)
        width = max(S1.shape[1], S2.shape[1])
        pad = (lambda X: np.pad(X, ((0, 0), (0, width - X.shape[1])), constant_values=-1e9))
        S, E = np.concatenate([pad(S1), pad(S2)]), np.concatenate([pad(E1), pad(E2)])
        cands, null = self._decode(windows, S, E)
        return self._finish(question, passages, document_text, max_answers, cands, null, len(windows.context_of),
                            len(passages))

    def read_contexts(self, question: str, contexts: list[tuple[str, str]], max_answers: int = 3) -> ReaderOutput:
        """Answer from (document_id, text) pairs read whole (e.g. a SQuAD paragraph)."""
        texts = dict(contexts)
        cands, null, n_windows = self.spans(question, [t for _, t in contexts])
        located = [Located(contexts[c.context_index][0], c.start, c.end, c.prob, c.context_index) for c in cands]
        out = self._assemble(question, located, texts.__getitem__, max_answers, n_windows, null, len(contexts), None)
        out.passages_read = len(contexts)
        return out

    # -- merging -----------------------------------------------------------------------------
    def _assemble(self, question: str, located: list[Located], document_text, max_answers: int, n_windows: int,
                  null: float, n_passages: int, passages: list[Passage] | None,
                  model: str = "full") -> ReaderOutput:
        texts: dict[str, str] = {}

        def text_of(doc: str) -> str:
            if doc not in texts:
                texts[doc] = document_text(doc)
            return texts[doc]

        groups = group_answers(located, text_of, sentence_bounds)
        # each passage's own best span (agreement between passages)
        best_key: list[str | None] = [None] * n_passages
        for c in located:  # best first
            if 0 <= c.passage < n_passages and best_key[c.passage] is None:
                best_key[c.passage] = key_of(text_of(c.document)[c.start : c.end])
        considered = groups[: max(self.verify_top, max_answers)]
        kind = model if passages is not None else "reader"
        # the verifier's features, always computed (cheap; `qa train-verifier` collects them with the verifier off)
        rows = [answer_features(considered, i, null, question, text_of(g.best.document)[g.best.start : g.best.end],
                                best_key, passages,
                                [text_of(c.document)[cs:ce] for c, (cs, ce) in zip(g.citations, g.contexts)])
                for i, g in enumerate(considered)]
        if self.verifier is not None and considered:
            # the verifier scores the answers; it does not reorder them (the reader's order by support is better:
            # on 400 dev-42 paragraphs, top-answer F1 83.2 in the reader's order against 73.0 re-ranked)
            with timing.stage("verifier"):
                probs = [float(x) for x in self.verifier.score(rows, kind)]
            scored = list(zip(considered, probs, rows))
            threshold = self.min_confidence
        else:
            scored = [(g, g.support, r) for g, r in zip(considered, rows)]
            threshold = self.threshold
        answers: list[Answer] = []
        for g, score, _ in scored:
            citations = []
            for c, (cs, ce) in zip(g.citations, g.contexts):
                t = text_of(c.document)
                citations.append(Citation(document=c.document, start=c.start, end=c.end, text=t[c.start : c.end],
                                          score=round(c.prob, 6), context=t[cs:ce], context_start=cs, context_end=ce))
            answers.append(Answer(text=citations[0].text, score=round(score, 6), citations=citations))
        best = answers[0] if answers else None
        if self.verifier is not None:
            found = best is not None and best.score >= threshold
            kept_answers = [a for a in answers if a.score >= threshold][:max_answers] if found else []
        else:  # no verifier: the old rule on the best span's probability
            best_prob = best.citations[0].score if best else 0.0
            found = best is not None and best_prob >= threshold
            kept_answers = [a for a in answers if a.citations[0].score >= threshold][:max_answers] if found else []
        extra = {"features": [r for _, _, r in scored], "answer_texts": [a.text for a in answers], "null_prob": null}
        return ReaderOutput(answers=kept_answers, answer_found=found, no_answer_score=round(null, 6),
                            best_guess=best, candidates=len(located), windows=n_windows, extra=extra)
