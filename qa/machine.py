"""What machine a figure came from: the CPU's name, cores and the instruction sets the reader's runtimes care
about, what PyTorch uses, and any variable restricting them (how a faster CPU emulates an AVX2-only one).

Speed and, through int8 rounding, answers depend on the CPU (docs/benchmarks.md), so `qa eval` reports and the
benchmarks record this beside their figures. Reads ``/proc/cpuinfo`` where there is one; never fails.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# the CPU flags (as Linux names them) that decide the reader's runtime, with the words a report uses
FLAGS = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
         ("avx512_bf16", "AVX-512 BF16"), ("amx_tile", "AMX"))
# variables that restrict the kernels' instruction sets (docs/benchmarks.md: all four emulate an AVX2-only CPU)
RESTRICTIONS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "FBGEMM_ENABLE_INSTRUCTIONS",
                "MKL_ENABLE_INSTRUCTIONS")


def parse_cpuinfo(text: str) -> tuple[str | None, set[str]]:
    """The first processor's model name and flags in a ``/proc/cpuinfo`` text (x86 ``flags``, arm ``Features``)."""
    name, flags = None, set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "model name" and name is None:
            name = value.strip() or None
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return name, flags


def describe(cpuinfo: str | None = None, environ: dict[str, str] | None = None) -> dict:
    """A JSON-ready description of this machine (``cpuinfo``/``environ`` for tests: default the real ones)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    env = os.environ if environ is None else environ
    name, flags = parse_cpuinfo(cpuinfo)
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
        threads = torch.get_num_threads()
    except Exception:  # noqa: BLE001 - a description, never an error
        capability, threads = None, None
    return {
        "cpu": name or platform.processor() or platform.machine(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "isa": [word for flag, word in FLAGS if flag in flags],
        "torch_capability": capability,
        "restricted": {k: env[k] for k in RESTRICTIONS if env.get(k)},
    }


def summary(d: dict | None = None) -> str:
    """One line for a report or a benchmark's output, e.g. ``AMD EPYC 9R14, 2 cores; AVX2, AVX-512, AVX-512 VNNI,
    AVX-512 BF16, no AMX; torch AVX512``, with ``; restricted: ATEN_CPU_CAPABILITY=avx2 ...`` when emulating."""
    d = describe() if d is None else d
    isa = list(d.get("isa") or [])
    if d.get("arch", "").lower() in ("x86_64", "amd64") and "AMX" not in isa:
        isa.append("no AMX")
    parts = [f"{d.get('cpu')}, {d.get('cores')} cores"] + ([", ".join(isa)] if isa else [])
    if d.get("torch_capability"):
        parts.append(f"torch {d['torch_capability']}")
    if d.get("restricted"):
        parts.append("restricted: " + " ".join(f"{k}={v}" for k, v in d["restricted"].items()))
    return "; ".join(parts)
