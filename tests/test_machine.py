"""qa.machine: what a figure's machine was, from /proc/cpuinfo texts of the CPUs this project meets."""

from __future__ import annotations

from qa import machine

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni avx512_bf16 avx512vl
processor\t: 1
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni avx512_bf16 avx512vl
"""
SAPPHIRE = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
AVX2 = """processor\t: 0
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse2 avx avx2 fma f16c
"""
ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes bf16 i8mm
"""


def test_cpuinfo_gives_the_first_processors_name_and_flags():
    assert machine.parse_cpuinfo(ZEN4) == ("AMD EPYC 9R14", {"fpu", "sse2", "avx", "avx2", "fma", "avx512f",
                                                             "avx512_vnni", "avx512_bf16", "avx512vl"})
    assert machine.parse_cpuinfo(ARM) == (None, {"fp", "asimd", "evtstrm", "aes", "bf16", "i8mm"})
    assert machine.parse_cpuinfo("") == (None, set())
    assert machine.parse_cpuinfo("garbage without colons\n\n") == (None, set())


def test_the_instruction_sets_that_pick_the_reader_runtime_are_named():
    zen4 = machine.describe(ZEN4, {})
    assert zen4["cpu"] == "AMD EPYC 9R14"
    assert zen4["isa"] == ["AVX2", "AVX-512", "AVX-512 VNNI", "AVX-512 BF16"] and zen4["restricted"] == {}
    assert machine.describe(SAPPHIRE, {})["isa"][-1] == "AMX"
    assert machine.describe(AVX2, {})["isa"] == ["AVX2"]


def test_summary_says_no_amx_on_x86_and_what_restricts_the_kernels():
    env = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "UNRELATED": "x", "ONEDNN_MAX_CPU_ISA": ""}
    d = machine.describe(AVX2, env)
    assert d["restricted"] == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    d["arch"] = "x86_64"
    line = machine.summary(d)
    assert line.startswith("AMD EPYC 7B12, ") and "AVX2, no AMX" in line
    assert line.endswith("restricted: ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2")
    s = machine.describe(SAPPHIRE, {})
    s["arch"] = "x86_64"
    assert "no AMX" not in machine.summary(s) and "AMX" in machine.summary(s)
    arm = machine.describe(ARM, {})
    arm["arch"] = "aarch64"
    assert "AMX" not in machine.summary(arm)


def test_this_machine_is_described_without_error():
    d = machine.describe()
    assert d["cores"] and isinstance(d["isa"], list) and machine.summary(d)
