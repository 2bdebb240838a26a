"""The Cortex-M3/M4 cycle estimate (tinysnn_serial.cycles and the QEMU TCG plugin in
qemu-plugin/cmcycles.c): reference loops against their hand counts from the TRM tables
(qemu-plugin/tests/refloops.S), the decoder against objdump over a broad instruction sample and
a real firmware, tsnn_infer timed per sample, and ``tinysnn board cycles``.

Needs gcc (the plugin), arm-none-eabi-gcc and qemu-system-arm: CI installs them all."""

from __future__ import annotations

import argparse
import io
import re
import subprocess

import pytest
from serial_models import small_model
from serial_test_tools import need_arm_toolchain, need_qemu

from tinysnn_core.modelfile import save_network
from tinysnn_serial import cycles
from tinysnn_serial.boards import BOARDS

TESTS = cycles.plugin_source_dir() / "tests"
N = 100  # iterations of each reference loop (refloops.S: r0 = 100, copy_loop 25 blocks)


def need_host_cc():
    if cycles.host_compiler() is None:
        pytest.skip("no host C compiler (Debian: gcc); CI installs it")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    need_host_cc()
    return cycles.build_plugin(tmp_path_factory.mktemp("plugin"))


# ---- hand counts (refloops.S derives each one in its comments) ---------------------------------

def hand_counts(core: str) -> dict[str, list[int]]:
    m4 = core == "cortex-m4"
    counts = {
        "alu_loop": [6 * 1 + 3, 6 * N + 3],          # called with N = 1 and N = 100
        "load_loop": [15 * N + 2],
        "mul_loop": [(18 if m4 else 23) * N + 4],      # MLA 1|2, UMULL 1|5, UDIV 12
        "branch_loop": [8 * N - 2],
        "copy_loop": [13 * 25 + 14],
        "it_loop": [5 * N + 3],
        "flash_load_loop": [11 * N + 3],
    }
    if m4:
        counts["dsp_loop"] = [7 * N + 4]
    return counts


#: the core counts the TRMs' ranges allow (P 1-3, UDIV 2-12, M3 UMULL 3-5, IT not folded)
def hand_ranges(core: str) -> dict[str, list[tuple[int, int]]]:
    m4 = core == "cortex-m4"
    p = 2 * (N - 1)  # N-1 taken direct branches at P = 1 that may cost up to 3
    ranges = {
        "alu_loop": [(8, 10), (602, 602 + p + 2)],  # bx lr: P 2 of 1..3
        "load_loop": [(1501, 1501 + p + 2)],
        "mul_loop": [(803, 1804 + p + 1) if m4 else (1103, 2304 + p + 1)],  # UDIV 12 -> 2
        "branch_loop": [(798 - (N - 1) - 1, 798 + (N - 1) + p + 2 + 1)],
        "copy_loop": [(337, 339 + 2 * 24)],  # pop {pc}: P 3 of 1..3
        "it_loop": [(502, 502 + p + 2 + N)],  # + N: IT not folded
        "flash_load_loop": [(1102, 1102 + p + 2)],
    }
    if m4:
        ranges["dsp_loop"] = [(703, 703 + p + 2)]
    return ranges


#: with ws flash wait states on code and constants (0x0 up): (fetch stalls, data stalls) / ws
HAND_STALLS = {"alu_loop": [(2 * 1, 0), (2 * N, 0)], "flash_load_loop": [(2 * N + 1, 4 * N)],
               "load_loop": [(None, 0)]}  # the load loop reads RAM only


def build_refloops(tmp_path, core: str):
    need_arm_toolchain()
    elf = tmp_path / f"refloops-{core}.elf"
    argv = ["arm-none-eabi-gcc", f"-mcpu={core}", "-mthumb", "-nostdlib", "-nostartfiles",
            "-T", str(TESTS / "link.ld"), "-o", str(elf), str(TESTS / "refloops.S")]
    if core == "cortex-m4":
        argv.insert(1, "-DWITH_DSP")
    subprocess.run(argv, check=True, capture_output=True)
    return elf


def run_refloops(plugin, elf, core, functions, tmp_path, ws=0, isrs=()):
    machine = "mps2-an386" if core == "cortex-m4" else "mps2-an385"
    profile = cycles.CycleProfile(core=core, flash_wait_states=ws)
    addrs = {f: cycles.symbol_address(elf, f) for f in functions}
    out = tmp_path / f"calls-{core}-{ws}-{len(isrs)}.txt"
    argv = cycles.plugin_argv(plugin, profile, entries=list(addrs.values()), out=out,
                              flash=(0, 0x10000), isrs=isrs)
    subprocess.run(["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none",
                    "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
                   + argv, check=True, timeout=30, capture_output=True)
    by_addr = {a: f for f, a in addrs.items()}
    got: dict[str, list] = {f: [] for f in functions}
    for c in cycles.parse_calls(out.read_text()):
        got[by_addr[c.entry]].append(c)
    return got


@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4"])
def test_reference_loops_match_hand_counts(plugin, tmp_path, core):
    need_qemu()
    elf = build_refloops(tmp_path, core)
    # b.w's target must be a 32-bit instruction that straddles two words (P = 2 in the count)
    assert cycles.symbol_address(elf, "br_target") % 4 == 2
    want = hand_counts(core)
    got = run_refloops(plugin, elf, core, list(want), tmp_path)
    ranges = hand_ranges(core)
    for name, counts in want.items():
        assert [c.cycles for c in got[name]] == counts, name
        assert [(c.core_lo, c.core_hi) for c in got[name]] == ranges[name], name
        assert all(c.core == c.cycles and c.fetch_stall == c.data_stall == 0
                   for c in got[name]), name


@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4"])
def test_an_exception_inside_a_call_is_counted_apart(plugin, tmp_path, core):
    need_qemu()
    elf = build_refloops(tmp_path, core)
    isrs = cycles.handler_ranges(elf)
    assert isrs == [(cycles.symbol_address(elf, "SVCall_Handler"),
                     cycles.symbol_address(elf, "SVCall_Handler") + 4)]
    (apart,) = run_refloops(plugin, elf, core, ["svc_call"], tmp_path, isrs=isrs)["svc_call"]
    assert (apart.insns, apart.cycles, apart.isr_insns, apart.isr_cycles) == (4, 6, 2, 16)
    # without the handler's range its work is the call's (what an interrupt from the host's
    # timing did to the per-sample counts before)
    (mixed,) = run_refloops(plugin, elf, core, ["svc_call"], tmp_path)["svc_call"]
    assert (mixed.insns, mixed.cycles, mixed.isr_insns) == (6, 22, 0)


def test_flash_wait_states_match_hand_counts(plugin, tmp_path):
    need_qemu()
    core, ws = "cortex-m3", 4
    elf = build_refloops(tmp_path, core)
    want = hand_counts(core)
    got = run_refloops(plugin, elf, core, list(HAND_STALLS), tmp_path, ws=ws)
    for name, stalls in HAND_STALLS.items():
        for call, (fetch, data), core_cycles in zip(got[name], stalls, want[name]):
            assert call.core == core_cycles, name  # wait states never change the core count
            if fetch is not None:
                assert call.fetch_stall == fetch * ws, name
            assert call.data_stall == data * ws, name
            assert call.cycles == call.core + call.fetch_stall + call.data_stall


# ---- the decoder against objdump ------------------------------------------------------------------

COND = "eq ne cs hs cc lo mi pl vs vc hi ls ge lt gt le al".split()
EXACT = {
    "mul": "MUL", "muls": "MUL", "mla": "MLA", "mls": "MLA", "umull": "MULL", "smull": "MULL",
    "umlal": "MLAL", "smlal": "MLAL", "sdiv": "DIV", "udiv": "DIV", "ldrd": "LDRD",
    "strd": "STRD", "tbb": "TB", "tbh": "TB", "bl": "BL", "blx": "BLX_REG", "bx": "BR_REG",
    "b": "BR", "cbz": "BR_COND", "cbnz": "BR_COND", "nop": "NOP", "yield": "NOP", "sev": "NOP",
    "pld": "NOP", "pli": "NOP", "wfi": "WFI", "wfe": "WFI", "dmb": "BARRIER", "dsb": "BARRIER",
    "isb": "ISB", "cpsie": "SYS", "cpsid": "SYS", "msr": "SYS", "bkpt": "SYS", "svc": "SYS",
    "udf": "SYS", "mrs": "ALU", "clrex": "ALU", "strex": "STREX", "strexb": "STREX",
    "strexh": "STREX", "ldrex": "LDR", "ldrexb": "LDR", "ldrexh": "LDR", "umaal": "DSPMUL",
    "vldr": "VLDR", "vstr": "VSTR", "vpush": "VSTM", "vpop": "VLDM", "vdiv": "FP14",
    "vsqrt": "FP14",
}
LOADS = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrt", "ldrbt", "ldrht", "ldrsbt", "ldrsht"}
STORES = {"str", "strb", "strh", "strt", "strbt", "strht"}
DSP = re.compile(r"(smla|smul|smlsd|smlad|smuad|smusd|smmla|smmls|smmul|smlal|usada?8|smlsld|"
                 r"smlald)\w*")


def expected_class(mnemonic: str, ops: str) -> str:
    """The timing class an instruction should get, from objdump's mnemonic and operands."""
    m = mnemonic.split(".")[0]
    bases = [m] + [m[:-2] for c in COND if m.endswith(c) and len(m) > 2]
    if m[0] == "b" and m[1:] in COND:
        return "BR_COND"
    first = ops.split(",")[0].strip()
    for b in bases:
        if b in EXACT:
            return EXACT[b]
        if b.startswith("vldm"):
            return "VLDM"
        if b.startswith("vstm"):
            return "VSTM"
        if b == "vmov" and len(re.findall(r"\br\d+\b", ops)) == 2:
            return "VMOV2"
        if re.fullmatch(r"v(n?ml[as]|fn?m[as])", b):
            return "FP3"
        if b.startswith("v"):
            return "FP1"
        if b in LOADS:
            return "LD_PC" if first == "pc" else "LDR"
        if b in STORES:
            inner = ops[ops.find("["):] if "[" in ops else ""
            reg_offset = re.match(r"\[\w+, (r\d+|ip|lr|sl|fp|sb)\b", inner)
            return "STR_REG" if reg_offset else "STR_IMM"
        if re.fullmatch(r"ldm(ia|db|fd|ea)?", b) or b == "pop":
            return "LDM_PC" if "pc" in ops else "LDM"
        if re.fullmatch(r"stm(ia|db|fd|ea)?", b) or b == "push":
            return "STM"
        if re.fullmatch(r"it[te]{0,3}", b):
            return "IT"
        if DSP.fullmatch(b):
            return "DSPMUL"
    if first == "pc" and m.startswith(("mov", "add")):
        return "ALU_PC"
    return "ALU"


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    need_host_cc()
    exe = tmp_path_factory.mktemp("decoder") / "decode_check"
    subprocess.run([cycles.host_compiler(), "-std=c11", "-O1", "-o", str(exe),
                    str(TESTS / "decode_check.c")], check=True, capture_output=True)
    return exe


def decode_mismatches(decoder, obj):
    text = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], capture_output=True,
                          text=True, check=True).stdout
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\t([0-9a-f]{4})(?: ([0-9a-f]{4}))?\s*\t(\S+)\s*(.*)", line)
        if m and not m.group(4).startswith("."):  # .word, .short: literal pools
            ops = re.split(r"[;@]", m.group(5))[0].strip()
            rows.append((m.group(2) + (f" {m.group(3)}" if m.group(3) else ""), m.group(4), ops))
    out = subprocess.run([str(decoder)], input="".join(r[0] + "\n" for r in rows),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == len(rows)
    bad = [(r, got.split()[0]) for r, got in zip(rows, out)
           if got.split()[0] != expected_class(r[1], r[2])]
    return len(rows), bad


def test_decoder_classes_a_broad_instruction_sample(decoder, tmp_path):
    need_arm_toolchain()
    obj = tmp_path / "isa.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                    "-mfpu=fpv4-sp-d16", "-c", str(TESTS / "isa.S"), "-o", str(obj)],
                   check=True, capture_output=True)
    n, bad = decode_mismatches(decoder, obj)
    assert n > 200 and bad == []


def test_decoder_classes_the_firmware(decoder, model_file, tmp_path):
    """The protocol firmware (M3 code) and a model's firmware with the real engine (M4 code)."""
    need_arm_toolchain()
    from tinysnn_serial import deploy

    net, m = deploy.load_model(model_file)
    elves = {"qemu-mps2-an385": BOARDS["qemu-mps2-an385"].build(build_dir=tmp_path / "m3"),
             "nucleo-l432kc": deploy.prepare(net, m, BOARDS["nucleo-l432kc"], name="dec_m4",
                                             build_dir=tmp_path / "m4")[0]}
    for name, elf in elves.items():
        n, bad = decode_mismatches(decoder, elf)
        assert n > 500 and bad == [], name


# ---- tsnn_infer per sample ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.tsnn"
    save_network(small_model("tinysnn", n=16, time_steps=40, n_test=8), path)
    return path


def test_tsnn_infer_per_sample(plugin, model_file, tmp_path):
    need_qemu()
    from tinysnn_serial import deploy

    emu = BOARDS["qemu-mps2-an385"]
    net, m = deploy.load_model(model_file)
    elf, *_ = deploy.prepare(net, m, emu, name="cycles_small", build_dir=tmp_path / "fw")
    images, _, seed, _ = deploy.test_split(net, 3)
    samples = [(images[i], seed, i) for i in range(3)] + [(images[0], seed, 0)]
    prof = cycles.cycle_profile("qemu-mps2-an385")
    assert (prof.core, prof.flash_wait_states) == ("cortex-m3", 0)
    rows = cycles.estimate_samples(elf, samples, prof, board=emu, plugin=plugin,
                                   work_dir=tmp_path / "run")
    assert [r.sid for r in rows] == [0, 1, 2, 0] and all(r.calls == 1 for r in rows)
    for r in rows:
        # the firmware counts QEMU instructions around the call (resolution 40, plus the call
        # and port_cycles itself); the plugin counts tsnn_infer's own
        assert abs(r.insns - r.icount) <= 120
        assert r.cycles == r.core and r.fetch_stall == r.data_stall == 0
        assert 1.0 < r.cycles / r.insns < 3.0
    # (the engine's work on a sample depends a little on the sample before: rows[3] differs
    # from rows[0] in the firmware's count and the plugin's alike)
    # the Cortex-M4 of the L432KC with its 4 wait states: a new QEMU, the same instructions
    # (deterministic: a UART interrupt or SysTick wrap that lands in the call is counted
    # apart), stalls on top
    l4 = cycles.cycle_profile("nucleo-l432kc")
    assert (l4.core, l4.flash_wait_states, l4.clock_hz) == ("cortex-m4", 4, 80_000_000)
    rows4 = cycles.estimate_samples(elf, samples[:1], l4, board=emu, plugin=plugin,
                                    work_dir=tmp_path / "run4")
    r4 = rows4[0]
    assert r4.insns == rows[0].insns and r4.fetch_stall > 0 and r4.data_stall > 0
    assert r4.cycles == r4.core + r4.fetch_stall + r4.data_stall
    assert r4.core <= rows[0].core  # the M4's single-cycle multiplies


def test_board_cycles_command(plugin, model_file, tmp_path, monkeypatch):
    need_qemu()
    monkeypatch.setenv("TINYSNN_PLUGIN_CACHE", str(plugin.parent))
    args = argparse.Namespace(name="nucleo-l432kc", model=str(model_file), samples=2,
                              wait_states=None, build_dir=str(tmp_path / "b"), timeout=5.0,
                              json=str(tmp_path / "c.json"))
    out = io.StringIO()
    assert cycles.CyclesCommand.run(args, out=out) == 0
    text = out.getvalue()
    assert "cortex-m4 timing tables, 4 flash wait states" in text
    assert re.search(r"median over 2 samples: [\d,]+ estimated cortex-m4 cycles", text)
    assert "latency at 80 MHz" in text and "0 wait states" in text
    assert '"samples"' in (tmp_path / "c.json").read_text()


# ---- profiles and errors (no tools needed) ---------------------------------------------------------

def test_cycle_profiles_of_the_boards():
    assert cycles.core_of(BOARDS["nucleo-l476rg"].profile) == "cortex-m4"
    assert cycles.cycle_profile("nucleo-l476rg").flash_wait_states == 4
    assert cycles.cycle_profile("nucleo-l476rg", wait_states=0).flash_wait_states == 0
    assert cycles.cycle_profile("qemu-mps2-an385").core == "cortex-m3"
    with pytest.raises(cycles.CycleError, match="no Cortex-M3/M4 core"):
        cycles.cycle_profile("host")
    with pytest.raises(cycles.CycleError, match="unknown board"):
        cycles.cycle_profile("nope")
    with pytest.raises(cycles.CycleError, match="no cycle model"):
        cycles.CycleProfile(core="cortex-m7")
    argv = cycles.plugin_argv("/p,q.so", cycles.CycleProfile("cortex-m4", 2), entries=[0x101],
                              out="/o.txt", flash=(0x08000000, 0x08040000),
                              isrs=[(0x201, 0x208)])
    assert argv[0] == "-plugin" and argv[1].startswith("/p,,q.so,cpu=cortex-m4,")
    assert "entry=0x100" in argv[1] and "flash=0x8000000:0x8040000" in argv[1]
    assert "isr=0x200:0x208" in argv[1]


def test_plugin_output_parsing():
    calls = cycles.parse_calls("entry=0x10 call=1 insns=7 cycles=17 core=9 fetch_stall=8 "
                               "data_stall=0\n# total insns=7\n"
                               "entry=0x10 call=2 insns=7 cycles=17 core=9 fetch_stall=8 "
                               "data_stall=0 core_lo=8 core_hi=11 isr_insns=5 isr_cycles=19\n")
    assert len(calls) == 2 and calls[0].cycles == 17 and calls[0].entry == 0x10
    assert (calls[0].isr_insns, calls[1].isr_insns, calls[1].isr_cycles) == (0, 5, 19)


def test_missing_compiler_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setattr(cycles, "host_compiler", lambda: None)
    with pytest.raises(cycles.CycleError) as err:
        cycles.build_plugin(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "no host C compiler" in msg and "gcc" in msg


def test_plugin_is_cached(plugin):
    assert cycles.build_plugin(plugin.parent) == plugin
