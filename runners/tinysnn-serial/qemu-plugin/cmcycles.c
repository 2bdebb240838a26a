/* cmcycles: a Cortex-M3 / Cortex-M4 cycle estimate for Thumb code running under QEMU (TCG
 * plugin, API version 1).
 *
 * At translation every instruction of a block is decoded into a timing class and charged from
 * the instruction timing tables of the Cortex-M3 TRM (ARM DDI 0337, section 3.3) and the
 * Cortex-M4 TRM (ARM 100166, section 3.3), with the TRMs' load/store pipelining notes applied
 * between neighbours of the same block. What depends on the path taken is settled when the next
 * block starts: a block that ends in a branch and is not followed by its fall-through address
 * took the branch and pays the pipeline refill P. Flash wait states are charged per 64-bit flash
 * line fetched (instructions) and per data read from the flash range (the ART accelerator off).
 * The model and its limits: docs/boards.md, "Cycle estimate (QEMU TCG plugin)".
 *
 * Arguments (-plugin cmcycles.so,ARG=VALUE,...):
 *   cpu=cortex-m3|cortex-m4   timing tables (default cortex-m3)
 *   entry=ADDR                a function to time from entry to return; may be repeated (16)
 *   ret=ADDR                  its return address (default: found from the calling BL/BLX)
 *   out=PATH                  one line per timed call (default: QEMU's log, -d plugin)
 *   flash=LO:HI ws=N          wait states of instruction fetches and data reads in [LO, HI)
 *   isr=LO:HI                 an exception handler's code; may be repeated (16). What runs in
 *                             it (entry charge and return refill included) is reported apart,
 *                             not charged to a timed call: an interrupt that lands in a call
 *                             (a UART byte, a SysTick wrap) depends on host timing, not on the
 *                             function. Handlers must be leaf functions.
 *   div=N mull=N mlal=N exc=N the data-dependent costs: SDIV/UDIV (default 12), UMULL/SMULL
 *                             and UMLAL/SMLAL on the M3 (5 and 7), exception entry (12)
 * Addresses are hexadecimal (0x...) or decimal.
 *
 * Output line per call: entry=0x... call=K insns=I cycles=C core=X fetch_stall=F data_stall=D
 * core_lo=L core_hi=H isr_insns=J isr_cycles=K, with cycles = core + fetch_stall + data_stall and [L, H] the core counts
 * the TRMs' ranges allow (P 1-3, DIV 2-12, MULL 3-5, MLAL 4-7, IT folded or not) and J, K what
 * the handlers ran during the call (not in I, C); "# total ..." at exit. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

CMC_EXPORT int qemu_plugin_version = 1;

/* ---- timing classes ----------------------------------------------------------------------- */
enum cls {
    C_ALU, C_MUL, C_MLA, C_MULL, C_MLAL, C_DSPMUL, C_DIV,
    C_LDR, C_STR_IMM, C_STR_REG, C_STREX, C_LDRD, C_STRD, C_LDM, C_STM,
    C_BR_COND, C_BR, C_BL, C_BR_REG, C_BLX_REG, C_ALU_PC, C_LD_PC, C_LDM_PC, C_TB,
    C_IT, C_NOP, C_WFI, C_BARRIER, C_ISB, C_SYS,
    C_FP1, C_FP3, C_FP14, C_VLDR, C_VSTR, C_VLDM, C_VSTM, C_VMOV2
};

#ifdef CMCYCLES_DECODE_TEST /* tests/decode_check.c prints the classes by name */
static const char *const cls_names[] = {
    "ALU", "MUL", "MLA", "MULL", "MLAL", "DSPMUL", "DIV",
    "LDR", "STR_IMM", "STR_REG", "STREX", "LDRD", "STRD", "LDM", "STM",
    "BR_COND", "BR", "BL", "BR_REG", "BLX_REG", "ALU_PC", "LD_PC", "LDM_PC", "TB",
    "IT", "NOP", "WFI", "BARRIER", "ISB", "SYS",
    "FP1", "FP3", "FP14", "VLDR", "VSTR", "VLDM", "VSTM", "VMOV2"};
#endif

/* How a block's last instruction leaves it. */
enum kind { K_NONE, K_DIRECT, K_REG, K_LOADPC };

typedef struct {
    uint8_t cls;
    uint8_t nregs;  /* registers moved by LDM/STM/PUSH/POP/VLDM/VSTM */
    uint8_t wide;   /* 32-bit encoding */
    uint8_t load;   /* reads data memory */
    uint8_t call;   /* BL, BLX */
    int8_t ld_rt;   /* destination of a single load, -1 if none */
    uint16_t wr;    /* registers written by a data-processing instruction */
    uint16_t addr;  /* registers that form a load/store address */
    uint8_t it_n;   /* IT: instructions in its block */
} dec_t;

static unsigned popcount16(unsigned v)
{
    unsigned n = 0;
    for (v &= 0xFFFFu; v; v &= v - 1u)
        n++;
    return n;
}

static dec_t mk(enum cls c)
{
    dec_t d;
    memset(&d, 0, sizeof d);
    d.cls = (uint8_t)c;
    d.ld_rt = -1;
    return d;
}

static uint16_t bit(unsigned r) { return (uint16_t)(r == 15u ? 0u : 1u << r); }

static dec_t alu(unsigned rd) { dec_t d = mk(C_ALU); d.wr = bit(rd); return d; }

static dec_t ldr(unsigned rt, uint16_t addr)
{
    dec_t d = mk(C_LDR);
    d.ld_rt = (int8_t)rt;
    d.addr = addr;
    d.load = 1;
    return d;
}

static dec_t mem(enum cls c, uint16_t addr, unsigned n, int load)
{
    dec_t d = mk(c);
    d.addr = addr;
    d.nregs = (uint8_t)n;
    d.load = (uint8_t)load;
    return d;
}

static dec_t decode16(unsigned hw)
{
    if ((hw & 0xC000u) == 0x0000u) { /* shift, add, subtract, move, compare */
        if ((hw & 0xF800u) == 0x2800u)
            return alu(15); /* CMP #imm: writes flags only */
        if ((hw & 0xE000u) == 0x2000u)
            return alu((hw >> 8) & 7u);
        return alu(hw & 7u);
    }
    if ((hw & 0xFC00u) == 0x4000u) { /* data processing */
        unsigned opc = (hw >> 6) & 0xFu;
        if (opc == 0xDu) {
            dec_t d = mk(C_MUL);
            d.wr = bit(hw & 7u);
            return d;
        }
        if (opc == 0x8u || opc == 0xAu || opc == 0xBu)
            return alu(15); /* TST, CMP, CMN */
        return alu(hw & 7u);
    }
    if ((hw & 0xFC00u) == 0x4400u) { /* special data processing, branch and exchange */
        unsigned opc = (hw >> 8) & 3u, rd = ((hw >> 4) & 8u) | (hw & 7u);
        if (opc == 3u) {
            dec_t d = mk((hw & 0x80u) ? C_BLX_REG : C_BR_REG);
            d.call = (hw & 0x80u) ? 1 : 0;
            return d;
        }
        if (opc == 1u)
            return alu(15);
        if (rd == 15u)
            return mk(C_ALU_PC);
        return alu(rd);
    }
    if ((hw & 0xF800u) == 0x4800u) /* LDR literal */
        return ldr((hw >> 8) & 7u, 0);
    if ((hw & 0xF000u) == 0x5000u) { /* load/store, register offset */
        unsigned opb = (hw >> 9) & 7u;
        uint16_t a = (uint16_t)(bit((hw >> 6) & 7u) | bit((hw >> 3) & 7u));
        if (opb < 3u)
            return mem(C_STR_REG, a, 1, 0);
        return ldr(hw & 7u, a);
    }
    if ((hw & 0xE000u) == 0x6000u || (hw & 0xF000u) == 0x8000u) { /* imm5 word, byte, half */
        uint16_t a = bit((hw >> 3) & 7u);
        if (hw & 0x0800u)
            return ldr(hw & 7u, a);
        return mem(C_STR_IMM, a, 1, 0);
    }
    if ((hw & 0xF000u) == 0x9000u) { /* SP-relative */
        if (hw & 0x0800u)
            return ldr((hw >> 8) & 7u, bit(13));
        return mem(C_STR_IMM, bit(13), 1, 0);
    }
    if ((hw & 0xF000u) == 0xA000u) /* ADR, ADD Rd, SP, #imm */
        return alu((hw >> 8) & 7u);
    if ((hw & 0xF000u) == 0xB000u) { /* miscellaneous */
        if ((hw & 0xFF00u) == 0xB000u)
            return alu(13);
        if ((hw & 0xF500u) == 0xB100u)
            return mk(C_BR_COND); /* CBZ, CBNZ */
        if ((hw & 0xFF00u) == 0xB200u || (hw & 0xFF00u) == 0xBA00u)
            return alu(hw & 7u); /* extend, reverse */
        if ((hw & 0xFE00u) == 0xB400u) /* PUSH */
            return mem(C_STM, bit(13), popcount16(hw & 0x1FFu), 0);
        if ((hw & 0xFE00u) == 0xBC00u) /* POP */
            return mem((hw & 0x100u) ? C_LDM_PC : C_LDM, bit(13), popcount16(hw & 0x1FFu), 1);
        if ((hw & 0xFF00u) == 0xBF00u) {
            if (hw & 0xFu) {
                unsigned m = hw & 0xFu, tz = 0;
                dec_t d = mk(C_IT);
                while (!(m & 1u)) {
                    m >>= 1;
                    tz++;
                }
                d.it_n = (uint8_t)(4u - tz);
                return d;
            }
            if ((hw & 0xF0u) == 0x20u || (hw & 0xF0u) == 0x30u)
                return mk(C_WFI);
            return mk(C_NOP);
        }
        return mk(C_SYS); /* CPS, BKPT, unallocated */
    }
    if ((hw & 0xF000u) == 0xC000u) { /* STM, LDM */
        uint16_t a = bit((hw >> 8) & 7u);
        if (hw & 0x0800u)
            return mem(C_LDM, a, popcount16(hw & 0xFFu), 1);
        return mem(C_STM, a, popcount16(hw & 0xFFu), 0);
    }
    if ((hw & 0xF000u) == 0xD000u) { /* B<cond>, UDF, SVC */
        unsigned cond = (hw >> 8) & 0xFu;
        return mk(cond >= 0xEu ? C_SYS : C_BR_COND);
    }
    if ((hw & 0xF800u) == 0xE000u)
        return mk(C_BR);
    return mk(C_ALU);
}

static dec_t decode_fp(unsigned hw1, unsigned hw2)
{
    if (((hw2 >> 8) & 0xEu) != 0xAu)
        return mk(C_ALU); /* another coprocessor: not modelled */
    if ((hw1 & 0xFE00u) == 0xEC00u) { /* extension register load/store, 64-bit transfers */
        unsigned rn = hw1 & 0xFu, load = (hw1 >> 4) & 1u;
        if ((hw1 & 0xFFE0u) == 0xEC40u) {
            dec_t d = mk(C_VMOV2);
            if (load)
                d.wr = (uint16_t)(bit(hw2 >> 12) | bit(hw1 & 0xFu));
            return d;
        }
        if ((hw1 & 0x0100u) && !(hw1 & 0x0020u)) /* P=1, W=0: VLDR, VSTR */
            return mem(load ? C_VLDR : C_VSTR, bit(rn), 1, (int)load);
        return mem(load ? C_VLDM : C_VSTM, bit(rn), hw2 & 0xFFu, (int)load);
    }
    if ((hw1 & 0xFF00u) == 0xEE00u) {
        unsigned opc1 = (hw1 >> 4) & 0xBu;
        if (hw2 & 0x10u) { /* VMOV core <-> single, VMRS, VMSR */
            dec_t d = mk(C_FP1);
            if (hw1 & 0x10u)
                d.wr = bit(hw2 >> 12);
            return d;
        }
        if (opc1 == 0x0u || opc1 == 0x1u || opc1 == 0x9u || opc1 == 0xAu)
            return mk(C_FP3); /* VMLA, VMLS, VNMLA, VNMLS, VFMA, VFMS, VFNMA, VFNMS */
        if (opc1 == 0x8u)
            return mk(C_FP14); /* VDIV */
        if (opc1 == 0xBu && (hw1 & 0xFu) == 1u && ((hw2 >> 6) & 3u) == 3u)
            return mk(C_FP14); /* VSQRT */
        return mk(C_FP1);
    }
    return mk(C_ALU);
}

static dec_t decode32(unsigned hw1, unsigned hw2)
{
    unsigned op1 = (hw1 >> 11) & 3u, op2 = (hw1 >> 4) & 0x7Fu;
    dec_t d;
    if (op1 == 1u) {
        if ((op2 & 0x64u) == 0x00u) { /* LDM, STM (T2), PUSH.W, POP.W */
            uint16_t a = bit(hw1 & 0xFu);
            unsigned n = popcount16(hw2);
            if (hw1 & 0x10u)
                return mem((hw2 & 0x8000u) ? C_LDM_PC : C_LDM, a, n, 1);
            return mem(C_STM, a, n, 0);
        }
        if ((op2 & 0x64u) == 0x04u) { /* load/store dual or exclusive, table branch */
            unsigned pu = (hw1 >> 7) & 3u, wl = (hw1 >> 4) & 3u, rn = hw1 & 0xFu;
            if ((pu & 2u) || (wl & 2u))
                return mem((wl & 1u) ? C_LDRD : C_STRD, bit(rn), 2, (int)(wl & 1u));
            if (wl == 0u)
                return mem(C_STREX, bit(rn), 1, 0);
            if (pu == 1u && ((hw2 >> 4) & 0xEu) == 0u) { /* TBB, TBH */
                d = mem(C_TB, (uint16_t)(bit(rn) | bit(hw2 & 0xFu)), 1, 1);
                return d;
            }
            return ldr(hw2 >> 12, bit(rn)); /* LDREX, LDREXB, LDREXH */
        }
        if ((op2 & 0x60u) == 0x20u) { /* data processing, shifted register */
            unsigned rd = (hw2 >> 8) & 0xFu;
            return alu(rd);
        }
        return decode_fp(hw1, hw2);
    }
    if (op1 == 2u) {
        if (!(hw2 & 0x8000u))
            return alu((hw2 >> 8) & 0xFu); /* data processing, immediate */
        {
            unsigned o = (hw2 >> 12) & 5u;
            if (o == 1u)
                return mk(C_BR); /* B.W */
            if (o == 5u || o == 4u) {
                d = mk(C_BL);
                d.call = 1;
                return d;
            }
            if (((hw1 >> 7) & 7u) != 7u)
                return mk(C_BR_COND); /* B<cond>.W */
            if (op2 == 0x3Au) { /* hints */
                unsigned h = hw2 & 0xFFu;
                return mk((h == 2u || h == 3u) ? C_WFI : C_NOP);
            }
            if (op2 == 0x3Bu) { /* CLREX, DSB, DMB, ISB */
                unsigned o2 = (hw2 >> 4) & 0xFu;
                if (o2 == 6u)
                    return mk(C_ISB);
                return mk((o2 == 4u || o2 == 5u) ? C_BARRIER : C_ALU);
            }
            if ((op2 & 0x7Eu) == 0x3Eu)
                return alu((hw2 >> 8) & 0xFu); /* MRS */
            return mk(C_SYS); /* MSR, UDF */
        }
    }
    /* op1 == 3 */
    if ((op2 & 0x71u) == 0x00u) { /* store single data item */
        unsigned rn = hw1 & 0xFu;
        if (hw1 & 0x80u) /* imm12 */
            return mem(C_STR_IMM, bit(rn), 1, 0);
        if (((hw2 >> 6) & 0x3Fu) == 0u) /* register offset */
            return mem(C_STR_REG, (uint16_t)(bit(rn) | bit(hw2 & 0xFu)), 1, 0);
        return mem(C_STR_IMM, bit(rn), 1, 0); /* imm8, pre/post-indexed, unprivileged */
    }
    if ((op2 & 0x61u) == 0x01u) { /* load byte, halfword, word; memory hints */
        unsigned rn = hw1 & 0xFu, rt = hw2 >> 12, size = (op2 >> 1) & 3u;
        uint16_t a = bit(rn);
        if (rn != 15u && !(hw1 & 0x80u) && ((hw2 >> 6) & 0x3Fu) == 0u)
            a = (uint16_t)(a | bit(hw2 & 0xFu)); /* register offset */
        if (size == 3u)
            return mk(C_ALU); /* undefined */
        if (rt == 15u) {
            if (size == 2u) {
                d = mem(C_LD_PC, a, 1, 1);
                return d;
            }
            return mk(C_NOP); /* PLD, PLI, unallocated hints */
        }
        return ldr(rt, a);
    }
    if ((op2 & 0x70u) == 0x20u) /* data processing, register (shifts, extend, SIMD, misc) */
        return alu((hw2 >> 8) & 0xFu);
    if ((op2 & 0x78u) == 0x30u) { /* multiply, multiply accumulate, absolute difference */
        unsigned o1 = (hw1 >> 4) & 7u, o2 = (hw2 >> 4) & 3u, ra = hw2 >> 12;
        if (o1 == 0u)
            d = mk((o2 == 0u && ra == 15u) ? C_MUL : C_MLA);
        else
            d = mk(C_DSPMUL);
        d.wr = bit((hw2 >> 8) & 0xFu);
        return d;
    }
    if ((op2 & 0x78u) == 0x38u) { /* long multiply, long multiply accumulate, divide */
        unsigned o1 = (hw1 >> 4) & 7u, o2 = (hw2 >> 4) & 0xFu;
        if ((o1 == 1u || o1 == 3u) && o2 == 0xFu) {
            d = mk(C_DIV);
            d.wr = bit((hw2 >> 8) & 0xFu);
            return d;
        }
        if ((o1 == 0u || o1 == 2u) && o2 == 0u)
            d = mk(C_MULL);
        else if ((o1 == 4u || o1 == 6u) && o2 == 0u)
            d = mk(C_MLAL);
        else
            d = mk(C_DSPMUL); /* SMLALxy, SMLALD, SMLSLD, UMAAL */
        d.wr = (uint16_t)(bit(hw2 >> 12) | bit((hw2 >> 8) & 0xFu));
        return d;
    }
    if (op2 & 0x40u)
        return decode_fp(hw1, hw2);
    return mk(C_ALU);
}

static dec_t decode(const uint8_t *b, size_t size)
{
    unsigned hw1 = (unsigned)b[0] | ((unsigned)b[1] << 8);
    dec_t d;
    if (size >= 4u) {
        unsigned hw2 = (unsigned)b[2] | ((unsigned)b[3] << 8);
        d = decode32(hw1, hw2);
        d.wide = 1;
    } else {
        d = decode16(hw1);
    }
    return d;
}

/* ---- configuration -------------------------------------------------------------------------- */
#define MAX_ENTRIES 16
#define MAX_ISRS 16

static struct {
    int m4;
    unsigned mla, mull, mlal, div, exc;
    uint64_t flash_lo, flash_hi;
    unsigned ws;
    FILE *out;
} cfg = {0, 2, 5, 7, 12, 12, 0, 0, 0, NULL};

typedef struct {
    uint64_t insns, core, fetch, data;
    uint64_t below, above; /* how far the TRM's ranges let the core count go either way */
} counters_t;

static counters_t now;
/* What ran in exception handlers, in total, and `now` when the running one was entered. */
static counters_t isr, isr_entered;
static int in_isr;
static struct { uint64_t lo, hi; } isrs[MAX_ISRS];
static int n_isrs;

static int is_isr(uint64_t a)
{
    int i;
    for (i = 0; i < n_isrs; i++)
        if (a >= isrs[i].lo && a < isrs[i].hi)
            return 1;
    return 0;
}

static void add_since(counters_t *acc, const counters_t *since)
{
    acc->insns += now.insns - since->insns;
    acc->core += now.core - since->core;
    acc->fetch += now.fetch - since->fetch;
    acc->data += now.data - since->data;
    acc->below += now.below - since->below;
    acc->above += now.above - since->above;
}

typedef struct {
    uint64_t addr, ret_fixed, ret;
    int active;
    uint64_t calls;
    counters_t start, isr_start;
} entry_t;

static entry_t entries[MAX_ENTRIES];
static int n_entries, n_active;

/* ---- blocks ------------------------------------------------------------------------------------ */
typedef struct {
    uint64_t vaddr, fallthrough;
    uint64_t first_line, last_line; /* 64-bit flash lines */
    uint32_t n, base, fetch_lines;
    uint32_t below, above;    /* range slack of the block's own instructions */
    uint32_t nottaken_refund; /* a conditional last instruction that did not execute */
    uint8_t kind, call, first_wide, in_flash;
    int8_t entry; /* index in entries[] + 1 when the block starts at a timed function */
    char tags[];  /* one per instruction: identity for the data-read callback */
} tbrec_t;

static const tbrec_t *prev_tb;
static const void *last_mem_tag;
static uint64_t last_mem_line;

static unsigned refill(unsigned kind, const tbrec_t *target)
{
    /* P: 1 when the target address is known early (direct branches), 2 for a register, 3 for a
     * loaded PC (the TRMs' note on LDR PC); +1 (at most 3) when the target is a 32-bit
     * instruction that straddles two words. */
    unsigned straddle = (target->first_wide && (target->vaddr & 2u)) ? 1u : 0u;
    unsigned p = kind == K_DIRECT ? 1u : kind == K_REG ? 2u : 3u;
    p += straddle;
    return p > 3u ? 3u : p;
}

static unsigned cost(const dec_t *d)
{
    switch (d->cls) {
    case C_MLA: return cfg.m4 ? 1u : cfg.mla;
    case C_MULL: return cfg.m4 ? 1u : cfg.mull;
    case C_MLAL: return cfg.m4 ? 1u : cfg.mlal;
    case C_DIV: return cfg.div;
    case C_LDR: case C_STREX: case C_STR_REG: case C_LD_PC: return 2u; /* pipelining below */
    case C_LDRD: case C_STRD: return 3u;
    case C_LDM: case C_STM: case C_LDM_PC: case C_VLDM: case C_VSTM: return 1u + d->nregs;
    case C_TB: return 3u; /* 2 load + 1 add, then the refill (TRM note) */
    case C_ISB: return 2u;
    case C_FP3: return 3u;
    case C_FP14: return 14u;
    case C_VLDR: case C_VSTR: case C_VMOV2: return 2u;
    default: return 1u; /* ALU, MUL, DSP, STR imm, branches (+P), IT, hints, FP */
    }
}

/* What the TRM ranges allow below the charged cost: DIV 2-12, and on the M3 MULL 3-5 and
 * MLAL 4-7 (the charged values are parameters, the TRM minimums are not). */
static unsigned range_below(const dec_t *d)
{
    unsigned c = cost(d), lo = c;
    if (d->cls == C_DIV)
        lo = 2u;
    else if (d->cls == C_MULL && !cfg.m4)
        lo = 3u;
    else if (d->cls == C_MLAL && !cfg.m4)
        lo = 4u;
    return c > lo ? c - lo : 0u;
}

static int is_data_processing(unsigned c)
{
    return c == C_ALU || c == C_MUL || c == C_MLA || c == C_MULL || c == C_MLAL ||
           c == C_DSPMUL || c == C_DIV;
}

static int is_memory(unsigned c)
{
    return (c >= C_LDR && c <= C_STM) || c == C_LD_PC || c == C_LDM_PC || c == C_TB ||
           (c >= C_VLDR && c <= C_VSTM);
}

static unsigned term_kind(unsigned c)
{
    switch (c) {
    case C_BR_COND: case C_BR: case C_BL: return K_DIRECT;
    case C_BR_REG: case C_BLX_REG: case C_ALU_PC: return K_REG;
    case C_LD_PC: case C_LDM_PC: case C_TB: return K_LOADPC;
    default: return K_NONE;
    }
}

static int in_flash(uint64_t a) { return cfg.ws && a >= cfg.flash_lo && a < cfg.flash_hi; }

static void write_line(const char *s)
{
    if (cfg.out) {
        fputs(s, cfg.out);
        fflush(cfg.out);
    } else {
        qemu_plugin_outs(s);
    }
}

static void close_call(entry_t *e)
{
    char buf[320];
    counters_t d = {0}, h = {0};
    add_since(&d, &e->start); /* everything since entry, handlers included */
    h.insns = isr.insns - e->isr_start.insns;
    h.core = isr.core - e->isr_start.core;
    h.fetch = isr.fetch - e->isr_start.fetch;
    h.data = isr.data - e->isr_start.data;
    h.below = isr.below - e->isr_start.below;
    h.above = isr.above - e->isr_start.above;
    d.insns -= h.insns;
    d.core -= h.core;
    d.fetch -= h.fetch;
    d.data -= h.data;
    d.below -= h.below;
    d.above -= h.above;
    e->calls++;
    snprintf(buf, sizeof buf,
             "entry=0x%" PRIx64 " call=%" PRIu64 " insns=%" PRIu64 " cycles=%" PRIu64
             " core=%" PRIu64 " fetch_stall=%" PRIu64 " data_stall=%" PRIu64 " core_lo=%" PRIu64
             " core_hi=%" PRIu64 " isr_insns=%" PRIu64 " isr_cycles=%" PRIu64 "\n",
             e->addr, e->calls, d.insns, d.core + d.fetch + d.data, d.core, d.fetch, d.data,
             d.core - d.below, d.core + d.above, h.insns, h.core + h.fetch + h.data);
    write_line(buf);
    e->active = 0;
    n_active--;
}

static void tb_exec(unsigned int vcpu, void *udata)
{
    const tbrec_t *t = udata;
    const tbrec_t *p = prev_tb;
    (void)vcpu;
    if (!in_isr && n_isrs && is_isr(t->vaddr)) {
        in_isr = 1; /* from here (the entry charge below included) until the handler returns */
        isr_entered = now;
    }
    if (p) {
        int taken = t->vaddr != p->fallthrough;
        if (p->kind != K_NONE) {
            if (taken) {
                unsigned pr = refill(p->kind, t);
                now.core += pr;
                now.below += pr - 1u; /* the TRMs: P is 1 to 3 */
                now.above += 3u - pr;
            } else
                now.core -= p->nottaken_refund;
        } else if (taken) {
            now.core += cfg.exc; /* no branch, yet elsewhere: an exception was taken */
        }
    }
    if (in_isr && !is_isr(t->vaddr)) {
        /* back from the handler: its blocks and the return's refill go to the handlers' count
         * (the interrupted branch's own refill, if any, went with the entry: at most 3) */
        add_since(&isr, &isr_entered);
        in_isr = 0;
    }
    if (n_active) {
        int i;
        for (i = 0; i < n_entries; i++)
            if (entries[i].active && entries[i].ret == t->vaddr)
                close_call(&entries[i]);
    }
    if (t->entry) {
        entry_t *e = &entries[t->entry - 1];
        uint64_t ret = e->ret_fixed ? e->ret_fixed : (p && p->call ? p->fallthrough : 0);
        if (!e->active && ret) {
            e->ret = ret;
            e->start = now;
            e->isr_start = isr;
            e->active = 1;
            n_active++;
        }
    }
    now.insns += t->n;
    now.core += t->base;
    now.below += t->below;
    now.above += t->above;
    if (t->in_flash)
        now.fetch += (uint64_t)cfg.ws *
                     (t->fetch_lines - ((p && p->in_flash && p->last_line == t->first_line) ? 1u : 0u));
    last_mem_tag = NULL;
    prev_tb = t;
}

static void mem_read(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    uint64_t line = vaddr >> 3;
    (void)vcpu;
    if (qemu_plugin_mem_is_store(info) || !in_flash(vaddr))
        return;
    if (udata == last_mem_tag && line == last_mem_line)
        return; /* the same 64-bit line within one LDM */
    last_mem_tag = udata;
    last_mem_line = line;
    now.data += cfg.ws;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb), i;
    tbrec_t *t;
    int prev_pipe = 0, prev_narrow = 0, it_left = 0, have_prev = 0;
    int8_t prev_rt = -1;
    uint16_t prev_wr = 0;
    uint64_t line = 0;
    (void)id;
    if (n == 0)
        return;
    t = calloc(1, sizeof *t + n);
    if (!t)
        return;
    t->vaddr = qemu_plugin_tb_vaddr(tb);
    t->n = (uint32_t)n;
    for (i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        size_t size = qemu_plugin_insn_size(insn);
        uint64_t va = qemu_plugin_insn_vaddr(insn);
        const uint8_t *bytes = qemu_plugin_insn_data(insn);
        dec_t d = decode(bytes, size);
        unsigned c = cost(&d), conditional = it_left > 0;
        uint64_t l0 = va >> 3, l1 = (va + size - 1u) >> 3;

        /* load/store pipelining: a single load (or STREX) lets the next LDR/STR (register
         * offset) or STREX complete in one cycle unless its address needs the loaded value */
        if ((d.cls == C_LDR || d.cls == C_STR_REG || d.cls == C_STREX) && prev_pipe &&
            !(prev_rt >= 0 && (d.addr & (1u << prev_rt))))
            c = 1u;
        /* an address computed by the instruction just before: no forwarding path, +1 */
        if (is_memory(d.cls) && (d.addr & prev_wr))
            c += 1u;
        if (d.cls == C_IT && have_prev && prev_narrow) {
            c = 0u; /* folded onto the preceding 16-bit instruction */
            t->above += 1u; /* "can be folded" */
        }
        t->base += c;
        t->below += range_below(&d);

        if (i == 0) {
            t->first_line = l0;
            t->first_wide = d.wide;
            t->fetch_lines = 1u + (l1 != l0);
        } else {
            t->fetch_lines += (l0 != line) + (l1 != l0);
        }
        line = l1;
        if (d.load && cfg.ws && cfg.flash_hi > cfg.flash_lo)
            /* RW, then reads kept by the callback: QEMU 7.2 applies the R/W filter the
             * wrong way round (MEM_R delivers the stores) */
            qemu_plugin_register_vcpu_mem_cb(insn, mem_read, QEMU_PLUGIN_CB_NO_REGS,
                                             QEMU_PLUGIN_MEM_RW, &t->tags[i]);
        if (i == n - 1u) {
            t->kind = (uint8_t)term_kind(d.cls);
            t->call = d.call;
            t->fallthrough = va + size;
            if (t->kind != K_NONE && (conditional || d.cls == C_BR_COND) && c > 1u)
                t->nottaken_refund = c - 1u; /* a skipped POP {..,pc} costs 1 */
        }
        prev_pipe = d.cls == C_LDR || d.cls == C_STREX;
        prev_rt = d.ld_rt;
        if (d.cls != C_IT)
            prev_wr = is_data_processing(d.cls) ? d.wr : 0;
        prev_narrow = !d.wide;
        have_prev = 1;
        if (d.cls == C_IT)
            it_left = d.it_n;
        else if (it_left)
            it_left--;
    }
    t->last_line = line;
    t->in_flash = (uint8_t)in_flash(t->vaddr);
    for (i = 0; i < (size_t)n_entries; i++)
        if (entries[i].addr == t->vaddr)
            t->entry = (int8_t)(i + 1);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, t);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    char buf[256];
    (void)id;
    (void)udata;
    snprintf(buf, sizeof buf,
             "# total insns=%" PRIu64 " cycles=%" PRIu64 " core=%" PRIu64
             " fetch_stall=%" PRIu64 " data_stall=%" PRIu64 "\n",
             now.insns, now.core + now.fetch + now.data, now.core, now.fetch, now.data);
    write_line(buf);
    if (cfg.out) {
        fclose(cfg.out);
        cfg.out = NULL;
    }
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!*s)
        return -1;
    *v = strtoull(s, &end, 0);
    return *end ? -1 : 0;
}

/* LO:HI with LO < HI */
static int parse_range(const char *val, uint64_t *lo, uint64_t *hi)
{
    char buf[64];
    const char *colon = strchr(val, ':');
    size_t ll = colon ? (size_t)(colon - val) : 0;
    if (!colon || ll == 0 || ll >= sizeof buf)
        return -1;
    memcpy(buf, val, ll);
    buf[ll] = '\0';
    if (parse_u64(buf, lo) || parse_u64(colon + 1, hi))
        return -1;
    return *hi > *lo ? 0 : -1;
}

static int parse_arg(const char *arg)
{
    const char *eq = strchr(arg, '=');
    const char *val;
    size_t klen;
    uint64_t v;
    if (!eq)
        return -1;
    klen = (size_t)(eq - arg);
    val = eq + 1;
#define KEY(k) (klen == sizeof(k) - 1u && !strncmp(arg, k, klen))
    if (KEY("cpu")) {
        if (!strcmp(val, "cortex-m3"))
            cfg.m4 = 0;
        else if (!strcmp(val, "cortex-m4"))
            cfg.m4 = 1;
        else
            return -1;
        return 0;
    }
    if (KEY("out")) {
        cfg.out = fopen(val, "a");
        return cfg.out ? 0 : -1;
    }
    if (KEY("flash"))
        return parse_range(val, &cfg.flash_lo, &cfg.flash_hi);
    if (KEY("isr")) {
        if (n_isrs == MAX_ISRS)
            return -1;
        if (parse_range(val, &isrs[n_isrs].lo, &isrs[n_isrs].hi))
            return -1;
        isrs[n_isrs].lo &= ~(uint64_t)1;
        n_isrs++;
        return 0;
    }
    if (parse_u64(val, &v))
        return -1;
    if (KEY("entry") || KEY("ret")) {
        if (KEY("entry")) {
            if (n_entries == MAX_ENTRIES)
                return -1;
            entries[n_entries++].addr = v & ~(uint64_t)1;
        } else {
            if (n_entries == 0)
                return -1; /* ret= follows the entry= it belongs to */
            entries[n_entries - 1].ret_fixed = v & ~(uint64_t)1;
        }
        return 0;
    }
    if (v > 1000u)
        return -1;
    if (KEY("ws")) cfg.ws = (unsigned)v;
    else if (KEY("div")) cfg.div = (unsigned)v;
    else if (KEY("mull")) cfg.mull = (unsigned)v;
    else if (KEY("mlal")) cfg.mlal = (unsigned)v;
    else if (KEY("exc")) cfg.exc = (unsigned)v;
    else return -1;
#undef KEY
    return 0;
}

CMC_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                   char **argv)
{
    int i;
    if (info && info->target_name && strcmp(info->target_name, "arm") != 0) {
        fprintf(stderr, "cmcycles: the guest is %s, not arm\n", info->target_name);
        return -1;
    }
    for (i = 0; i < argc; i++) {
        if (parse_arg(argv[i])) {
            fprintf(stderr, "cmcycles: bad argument '%s' (cpu=cortex-m3|cortex-m4, entry=ADDR, "
                            "ret=ADDR, out=PATH, flash=LO:HI, isr=LO:HI, ws=N, div=N, mull=N, "
                            "mlal=N, exc=N)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
