/* tinySNN integer inference engine: docs/fixed-point.md sections 5 to 7 for the constants that
 * tinysnn_serial.codegen generates into model_data.c/.h.
 *
 * Portable C99: integer only, no heap, no floating point, no library calls. All state is in
 * static arrays sized at compile time. The host's oracle is tinysnn_core.intsim; the tests
 * compare spike counts and predictions for every sample, on the host and on both QEMU boards.
 *
 * Where the instructions go, and what this engine does about it (docs/boards.md, "Engine cost"):
 *
 * - Input draws (one hash per non-zero pixel and step): the pixel's index term and its
 *   threshold image[i] * RATE[k] are tabled once per sample and presentation, so a draw is an
 *   add, the hash and one compare.
 * - Weight rows: the rows of the pixels that spike are added in batches of up to four into
 *   SIMD-within-a-register fields: four 8-bit fields a word for weights of 1, 2 or 4 bits (the
 *   2-bit codes of four rows are first summed in 4-bit fields, then spread), two 16-bit lanes
 *   for the other widths. A field holds FIELD_ROWS rows before it could overflow; a step with
 *   more input spikes spills the fields into 32-bit sums ("wide" step, rare).
 * - Neuron pass: one pass over the fields, no accumulator clear or lane flush of its own. The
 *   common step takes no refractory test per neuron: the few neurons whose update differs from
 *   the plain one (refractory ones, and inhibition sources that would otherwise inhibit
 *   themselves) are kept in a list, updated by the exact rule after the pass, and their pass
 *   results are discarded. Where the bounds allow it (checked per step), the current is folded
 *   into the leak multiply: u' = sat((u * D + bias + cur * 2^FD) >> FD), exactly
 *   sat(mul_shift(u) + cur), one multiply-accumulate and one saturating shift per neuron.
 * - Early exit (section 6): class sums are kept as spikes occur and the rule is tested only in
 *   steps with a spike.
 *
 * Neurons are stored in the order the fields hold them ("slot order", see n_to_j); spike counts,
 * assignments and the one-spike winner use the neuron number j. Widths: the generator proves
 * 32-bit arithmetic exact for the model's constants or asks for 64-bit (TSNN_*_V64,
 * TSNN_*_LEAK64); the folded pass is used only where its 32-bit sums are proven in range. */
#include <stdint.h>

#include "engine.h"
#include "model_data.h"

#if defined(__ARM_FEATURE_SAT) || defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

#define GOLDEN 0x9E3779B9u
#define STEP_MUL 0x85EBCA77u
#define INDEX_MUL 0xC2B2AE3Du
#define WINNER_INDEX 0xFFFFu

/* compile-time checks (a negative array size stops the build) */
typedef char tsnn_check_neurons[(TSNN_N == TSNN_N_NEURONS) ? 1 : -1];
typedef char tsnn_check_inputs[(TSNN_N_INPUTS == TSNN_IMAGE_BYTES) ? 1 : -1];
typedef char tsnn_check_classes[(TSNN_CLASSES == TSNN_N_CLASSES && TSNN_CLASSES <= 255u) ? 1 : -1];
typedef char tsnn_check_bits[(TSNN_W_BITS >= 1u && TSNN_W_BITS <= 16u) ? 1 : -1];
typedef char tsnn_check_steps[(TSNN_T >= 1u && TSNN_T <= 65535u) ? 1 : -1];

#if defined(__GNUC__)
#define TSNN_INLINE static inline __attribute__((always_inline))
#define TSNN_NOINLINE static __attribute__((noinline))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Keeps GCC from merging a field extraction into the shift that follows it (one UBFX and one
 * shifted add instead of three instructions). */
#define OPAQUE(x) __asm__("" : "+r"(x))
#else
#define TSNN_INLINE static inline
#define TSNN_NOINLINE static
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#define OPAQUE(x) ((void)0)
#endif

#if TSNN_EXC_V64
typedef int64_t exc_v_t;
#else
typedef int32_t exc_v_t;
#endif
#if TSNN_HAS_INH
#if TSNN_INH_V64
typedef int64_t inh_v_t;
#else
typedef int32_t inh_v_t;
#endif
#endif

/* ---- geometry -------------------------------------------------------------------------------
 * Weight word w of a row holds neurons G*w .. G*w + G - 1 (G = 2 * HALF codes, codegen's
 * pack_weights). Field sums: SHIFTS accumulator words per weight word, FIELDS fields each;
 * field b of accumulator word m = w * SHIFTS + k sums the codes of neuron
 * j = G*w + SHIFTS*b + k (codes at bit FIELD_BITS*b + BITS*k of the weight word). */
#define W_GROUP (2u * TSNN_W_HALF)
#define NPAD (TSNN_W_WORDS * W_GROUP) /* N rounded up to whole weight words */
#if TSNN_W_BITS == 1u || TSNN_W_BITS == 2u || TSNN_W_BITS == 4u
#define FIELD_BITS 8u
#define FIELDS 4u
#define SHIFTS (8u / TSNN_W_BITS)
#define FIELD_ROWS (255u / ((1u << TSNN_W_BITS) - 1u))
#else
#define FIELD_BITS 16u
#define FIELDS 2u
#define SHIFTS TSNN_W_HALF
#define FIELD_ROWS TSNN_W_FLUSH
#endif
#define FIELD_MAX ((1u << FIELD_BITS) - 1u)
#define ACC_WORDS (TSNN_W_WORDS * SHIFTS)
#define BATCH (FIELD_ROWS < 4u ? FIELD_ROWS : 4u) /* rows added per pass over the fields */
typedef char tsnn_check_geometry[(ACC_WORDS * FIELDS == NPAD && NPAD >= TSNN_N) ? 1 : -1];

/* Slot order inside an accumulator word: 8-bit fields b = 0, 2, 1, 3 (the two pairs an ARM
 * UXTB16 extracts together), 16-bit lanes in order. An involution: SLOT(SLOT(b)) = b. */
#if FIELDS == 4u
#define SLOT(b) ((((b) & 1u) << 1) | ((b) >> 1))
#else
#define SLOT(b) (b)
#endif
#define FIELD(x, b) (((x) >> (FIELD_BITS * (b))) & FIELD_MAX)

/* neuron number j <-> storage index n = m * FIELDS + SLOT(b) */
static uint32_t n_to_j(uint32_t n)
{
    const uint32_t m = n / FIELDS, b = SLOT(n % FIELDS);
    return W_GROUP * (m / SHIFTS) + SHIFTS * b + m % SHIFTS;
}

static uint32_t j_to_n(uint32_t j)
{
    const uint32_t w = j / W_GROUP, r = j % W_GROUP;
    return (w * SHIFTS + r % SHIFTS) * FIELDS + SLOT(r / SHIFTS);
}

/* Arithmetic right shift rounding toward minus infinity, without relying on the
 * implementation-defined >> of negative values (compilers turn this into one shift). */
#define ASR(x, s) ((x) >= 0 ? ((x) >> (s)) : ~((~(x)) >> (s)))

/* MurmurHash3's fmix32 (a macro so that the per-pixel draw is inlined) */
#define FMIX32(x)                                                                           \
    do {                                                                                    \
        (x) ^= (x) >> 16;                                                                   \
        (x) *= 0x85EBCA6Bu;                                                                 \
        (x) ^= (x) >> 13;                                                                   \
        (x) *= 0xC2B2AE35u;                                                                 \
        (x) ^= (x) >> 16;                                                                   \
    } while (0)

static uint32_t fmix32(uint32_t x)
{
    FMIX32(x);
    return x;
}

/* ---- state --------------------------------------------------------------------------------- */
/* A non-zero pixel i: h = INDEX_MUL * i, its part of the draw; t1 = image[i] * RATE[k] | 0xFFFF.
 * The draw is fmix32(skey + h) = y ^ (y >> 16) with y the hash before its last step, whose top
 * half is the draw's: y > t1 means draw > image[i] * RATE[k] (no spike), the common case; the
 * other draws are finished and compared exactly. */
typedef struct {
    uint32_t h;
    uint32_t t1;
} pixel_t;

static pixel_t px[TSNN_IMAGE_BYTES + 1]; /* the non-zero pixels, increasing i, and a spare */
static uint16_t px_index[TSNN_IMAGE_BYTES];
static uint16_t in_spikes[TSNN_IMAGE_BYTES]; /* positions in px of this step's input spikes */

static uint32_t accw[ACC_WORDS];         /* field sums of this step's weight rows */
static uint32_t acc32[NPAD];             /* 32-bit sums of a wide step, storage order */
/* The M4's DSP path (pass_simd): 16-bit potentials two to a word, updated in pairs. It needs
 * 8-bit fields, a 16-bit potential format, 32-bit leak products, a leak factor D <= 2^FD that
 * fits a signed halfword and a current that is a left shift of the field (section "neuron
 * pass" below). */
#if defined(__ARM_FEATURE_SIMD32) && defined(__ARM_FEATURE_DSP) && defined(__GNUC__)           \
    && defined(__thumb2__) && FIELDS == 4u && defined(TSNN_EXC_U_BITS)
#if TSNN_EXC_U_BITS == 16 && !TSNN_EXC_V64 && !TSNN_EXC_LEAK64 && TSNN_ALIGN_RSHIFT == 0         \
    && TSNN_ALIGN_LSHIFT <= 7 && TSNN_EXC_FD >= 1 && TSNN_EXC_FD <= 16 && TSNN_EXC_D <= 32767u   \
    && TSNN_EXC_D <= (1u << TSNN_EXC_FD)
#define SIMD16 1
#endif
#endif
#ifndef SIMD16
#define SIMD16 0
#endif

#if SIMD16
/* Per field word (four neurons, storage order): two words of potentials, two per word (the
 * even storage index in the low half), then (unless uniform) two words of the thresholds
 * saturated to 16 bits in the same places (they find the candidates; the exact test uses the
 * model's thresholds). */
#if TSNN_EXC_TH_UNIFORM
#define QUAD 2u
#else
#define QUAD 4u
#endif
static uint32_t quad[ACC_WORDS * QUAD];
#define U_WORD(n) quad[((n) >> 2) * QUAD + (((n) >> 1) & 1u)]
#define U_GET(n) ((exc_v_t)(((int32_t)((U_WORD(n) >> (16u * ((n) & 1u))) & 0xFFFFu) ^ 0x8000)     \
                            - 0x8000))
static void U_SET(uint32_t n, exc_v_t v)
{
    const uint32_t sh = 16u * (n & 1u);
    U_WORD(n) = (U_WORD(n) & ~(0xFFFFu << sh)) | (((uint32_t)v & 0xFFFFu) << sh);
}
#else
/* Per neuron, storage order: the potential u = v - rest and (unless uniform) the threshold
 * next to it, so that one LDRD loads both (padding neurons: a threshold never reached). */
#if TSNN_EXC_TH_UNIFORM
#define CELL 1u
#else
#define CELL 2u
#endif
static exc_v_t cell[NPAD * CELL];
#define U_GET(n) (cell[(n) * CELL])
#define U_SET(n, v) (cell[(n) * CELL] = (v))
#endif
static tsnn_exc_ref_t ref_exc[NPAD];     /* refractory steps left (kept >= 0, see below) */
static uint8_t flags[NPAD];              /* SPECIAL / SOURCE, storage order */
#define F_SPECIAL 1u
#define F_SOURCE 2u
static uint16_t refr[NPAD];              /* neurons with ref > 0 */
static uint32_t n_refr;
static uint16_t special[NPAD];           /* this step's neurons updated by the exact rule */
static exc_v_t special_u[NPAD];          /* ... and their potentials before the step */
static uint16_t crossed[NPAD];           /* neurons over threshold this step (storage order) */
static uint16_t src_list[TSNN_N];        /* inhibition sources of step t-1 (storage order) */
static uint32_t n_src;
static uint16_t exc_list[TSNN_N];        /* excitatory spikes of step t (neuron numbers) */
static uint32_t class_sum[TSNN_CLASSES];
#if TSNN_HAS_INH
static tsnn_inh_u_t u_inh[TSNN_N];
static tsnn_inh_ref_t ref_inh[TSNN_N];
static uint8_t exc_prev_flag[TSNN_N];    /* excitatory spikes of step t-1 (the inh input) */
static uint16_t exc_prev_list[TSNN_N];
static uint32_t n_exc_prev;
static uint16_t inh_list[TSNN_N];        /* inhibitory spikes of step t */
#endif

#if TSNN_EXC_TH_UNIFORM
#define EXC_TH(n) ((exc_v_t)(TSNN_EXC_TH_VALUE))
#elif SIMD16
#define EXC_TH(n) th_exact(n)
static exc_v_t th_exact(uint32_t n)
{
    const uint32_t j = n_to_j(n);
    return j < TSNN_N ? (exc_v_t)tsnn_exc_th[j] : (exc_v_t)TSNN_EXC_U_MAX + 1;
}
#else
#define EXC_TH(n) (cell[(n) * CELL + 1u])
#endif
#if TSNN_HAS_INH
#if TSNN_INH_TH_UNIFORM
#define INH_TH(j) ((inh_v_t)(TSNN_INH_TH_VALUE))
#else
#define INH_TH(j) ((inh_v_t)tsnn_inh_th[j])
#endif
#endif

/* Leak multiply mul_shift(u, D, FD): (u * D + bias) >> FD, floor. */
TSNN_INLINE exc_v_t exc_leak(exc_v_t u)
{
#if TSNN_EXC_LEAK64
    const int64_t p = (int64_t)u * (int64_t)TSNN_EXC_D + (int64_t)TSNN_EXC_ROUND_BIAS;
    return (exc_v_t)ASR(p, TSNN_EXC_FD);
#else
    const int32_t p = (int32_t)u * (int32_t)TSNN_EXC_D + (int32_t)TSNN_EXC_ROUND_BIAS;
    return (exc_v_t)ASR(p, TSNN_EXC_FD);
#endif
}

TSNN_INLINE exc_v_t exc_clamp(exc_v_t v)
{
    if (v < (exc_v_t)TSNN_EXC_U_MIN)
        return (exc_v_t)TSNN_EXC_U_MIN;
    if (v > (exc_v_t)TSNN_EXC_U_MAX)
        return (exc_v_t)TSNN_EXC_U_MAX;
    return v;
}

/* align(acc, fw, fv) of a (non-negative) sum of weight codes */
TSNN_INLINE exc_v_t exc_align(uint32_t acc)
{
#if TSNN_ALIGN_RSHIFT > 0
    return (exc_v_t)(acc >> TSNN_ALIGN_RSHIFT);
#else
    return (exc_v_t)acc << TSNN_ALIGN_LSHIFT;
#endif
}

#if TSNN_HAS_INH
static inh_v_t inh_leak(inh_v_t u)
{
#if TSNN_INH_LEAK64
    const int64_t p = (int64_t)u * (int64_t)TSNN_INH_D + (int64_t)TSNN_INH_ROUND_BIAS;
    return (inh_v_t)ASR(p, TSNN_INH_FD);
#else
    const int32_t p = (int32_t)u * (int32_t)TSNN_INH_D + (int32_t)TSNN_INH_ROUND_BIAS;
    return (inh_v_t)ASR(p, TSNN_INH_FD);
#endif
}
#endif

/* ---- weight rows into the fields -------------------------------------------------------------
 * acc_rows(rp, R, first): the fields of R rows (R <= BATCH) are summed in registers, then
 * stored (first batch of a step) or added to accw. */
#define M8_4 0x0F0F0F0Fu
/* sum over the batch's rows of EXPR(x), x the row's word w (R is a constant once inlined) */
#define ROWS_SUM(EXPR, out)                                                                     \
    do {                                                                                        \
        uint32_t x_ = r0[w];                                                                    \
        out = EXPR(x_);                                                                         \
        if (R > 1u) { x_ = r1[w]; out += EXPR(x_); }                                            \
        if (R > 2u) { x_ = r2[w]; out += EXPR(x_); }                                            \
        if (R > 3u) { x_ = r3[w]; out += EXPR(x_); }                                            \
    } while (0)
#define PUT(k, f) (a[k] = first ? (f) : a[k] + (f))
/* the masks are variables held in registers (OPAQUE): ARM then ands with a shifted operand */
#define NIB2_0(x) ((x) & m33)
#define NIB2_1(x) (((x) >> 2) & m33)
#define NIB1_0(x) ((x) & m11)
#define NIB1_1(x) (((x) >> 1) & m11)
#define NIB1_2(x) (((x) >> 2) & m11)
#define NIB1_3(x) (((x) >> 3) & m11)
#define BYTE4_0(x) ((x) & m4)
#define BYTE4_1(x) (((x) >> 4) & m4)
TSNN_INLINE void acc_rows(const uint32_t *const *rp, const uint32_t R, const int first)
{
    const uint32_t *const r0 = rp[0];
    const uint32_t *const r1 = R > 1u ? rp[1] : rp[0];
    const uint32_t *const r2 = R > 2u ? rp[2] : rp[0];
    const uint32_t *const r3 = R > 3u ? rp[3] : rp[0];
    uint32_t *a = accw;
    uint32_t w;
#if TSNN_W_BITS == 1u || TSNN_W_BITS == 2u || TSNN_W_BITS == 4u
    uint32_t m4 = M8_4;
#if TSNN_W_BITS == 2u
    uint32_t m33 = 0x33333333u;
    OPAQUE(m33);
#elif TSNN_W_BITS == 1u
    uint32_t m11 = 0x11111111u;
    OPAQUE(m11);
#endif
    OPAQUE(m4);
#endif
    for (w = 0; w < TSNN_W_WORDS; w++) {
#if TSNN_W_BITS == 2u
        /* 4-bit sums of the codes at bits 0 and 4 (and 2 and 6) of each byte, then spread */
        uint32_t s0, s1;
        ROWS_SUM(NIB2_0, s0);
        ROWS_SUM(NIB2_1, s1);
        PUT(0, s0 & m4);
        PUT(1, s1 & m4);
        PUT(2, (s0 >> 4) & m4);
        PUT(3, (s1 >> 4) & m4);
#elif TSNN_W_BITS == 1u
        uint32_t s0, s1, s2, s3;
        ROWS_SUM(NIB1_0, s0);
        ROWS_SUM(NIB1_1, s1);
        ROWS_SUM(NIB1_2, s2);
        ROWS_SUM(NIB1_3, s3);
        PUT(0, s0 & m4);
        PUT(1, s1 & m4);
        PUT(2, s2 & m4);
        PUT(3, s3 & m4);
        PUT(4, (s0 >> 4) & m4);
        PUT(5, (s1 >> 4) & m4);
        PUT(6, (s2 >> 4) & m4);
        PUT(7, (s3 >> 4) & m4);
#elif TSNN_W_BITS == 4u
        uint32_t s0, s1;
        ROWS_SUM(BYTE4_0, s0);
        ROWS_SUM(BYTE4_1, s1);
        PUT(0, s0);
        PUT(1, s1);
#else
        uint32_t k; /* two 16-bit lanes */
        for (k = 0; k < SHIFTS; k++) {
#define LANE_K(x) (((x) >> (TSNN_W_BITS * k)) & TSNN_W_LANE_MASK)
            uint32_t f;
            ROWS_SUM(LANE_K, f);
            PUT(k, f);
#undef LANE_K
        }
#endif
        a += SHIFTS;
    }
}

TSNN_NOINLINE void acc_batch(const uint32_t *const *rp, uint32_t r, int first)
{
    if (first) {
        switch (r) {
        case 1: acc_rows(rp, 1u, 1); break;
#if BATCH > 1u
        case 2: acc_rows(rp, 2u, 1); break;
#endif
#if BATCH > 2u
        case 3: acc_rows(rp, 3u, 1); break;
#endif
#if BATCH > 3u
        default: acc_rows(rp, 4u, 1); break;
#endif
        }
    } else {
        switch (r) {
        case 1: acc_rows(rp, 1u, 0); break;
#if BATCH > 1u
        case 2: acc_rows(rp, 2u, 0); break;
#endif
#if BATCH > 2u
        case 3: acc_rows(rp, 3u, 0); break;
#endif
#if BATCH > 3u
        default: acc_rows(rp, 4u, 0); break;
#endif
        }
    }
}

/* acc32 (+)= the fields (storage order) */
static void spill_fields(int first)
{
    uint32_t m, s;
    for (m = 0; m < ACC_WORDS; m++) {
        const uint32_t x = accw[m];
        for (s = 0; s < FIELDS; s++) {
            const uint32_t v = FIELD(x, SLOT(s));
            acc32[m * FIELDS + s] = first ? v : acc32[m * FIELDS + s] + v;
        }
    }
}

/* The input spikes of one step (section 5) and the sums of their weight rows. Returns 1 when
 * the sums are in acc32 (a wide step), 0 when they are in the fields. */
/* two pixels, then p += 2 */
#if defined(__GNUC__) && defined(__thumb2__)
#define LOAD_PIXELS(p, h0, t0, h1, t1)                                                          \
    do {                                                                                        \
        __asm__("ldrd %0, %1, [%4]\n\tldrd %2, %3, [%4, #8]"                                    \
                : "=&r"(h0), "=&r"(t0), "=r"(h1), "=r"(t1)                                      \
                : "r"(p), "m"(*(const pixel_t(*)[2])(p)));                                      \
        (p) += 2;                                                                               \
    } while (0)
#else
#define LOAD_PIXELS(p, h0, t0, h1, t1)                                                          \
    ((void)((h0) = (p)[0].h), (void)((t0) = (p)[0].t1), (void)((h1) = (p)[1].h),               \
     (void)((t1) = (p)[1].t1), (void)((p) += 2))
#endif
#define HASH_BUT_LAST(x)                                                                        \
    do {                                                                                        \
        (x) ^= (x) >> 16;                                                                       \
        (x) *= 0x85EBCA6Bu;                                                                     \
        (x) ^= (x) >> 13;                                                                       \
        (x) *= 0xC2B2AE35u;                                                                     \
    } while (0)

/* The slow half of a draw: pixel q with y <= t1 */
TSNN_INLINE uint32_t draw_exact(uint32_t y, uint32_t q, uint32_t n_nz, const uint8_t *image,
                                uint32_t rate, uint32_t n_in)
{
    if (q < n_nz && (y ^ (y >> 16)) < (uint32_t)image[px_index[q]] * rate)
        in_spikes[n_in++] = (uint16_t)q;
    return n_in;
}

/* The input spikes of a step (section 5): their positions in px, in increasing order. */
TSNN_NOINLINE uint32_t draw_inputs(uint32_t skey, uint32_t n_nz, const uint8_t *image,
                                   uint32_t rate)
{
    const pixel_t *p = px;
    const pixel_t *const end = px + ((n_nz + 1u) & ~1u); /* pairs: px[n_nz] is a spare */
    uint32_t n_in = 0;
    while (p != end) {
        uint32_t h0, t0, h1, t1, y0, y1;
        LOAD_PIXELS(p, h0, t0, h1, t1);
        y0 = skey + h0;
        y1 = skey + h1;
        HASH_BUT_LAST(y0);
        HASH_BUT_LAST(y1);
        if (UNLIKELY(y0 <= t0))
            n_in = draw_exact(y0, (uint32_t)(p - px) - 2u, n_nz, image, rate, n_in);
        if (UNLIKELY(y1 <= t1))
            n_in = draw_exact(y1, (uint32_t)(p - px) - 1u, n_nz, image, rate, n_in);
    }
    return n_in;
}

static int inputs(uint32_t skey, uint32_t n_nz, const uint8_t *image, uint32_t rate)
{
    const uint32_t *rp[4];
    const uint32_t n_in = draw_inputs(skey, n_nz, image, rate);
    uint32_t q, rows = 0;
    int wide = 0, first = 1;
    for (q = 0; q < n_in; q += BATCH) {
        uint32_t r = n_in - q < BATCH ? n_in - q : BATCH, i;
        if (rows + r > FIELD_ROWS) { /* the fields are full: spill them */
            spill_fields(!wide);
            wide = 1;
            first = 1;
            rows = 0;
        }
        for (i = 0; i < r; i++)
            rp[i] = &tsnn_w[(uint32_t)px_index[in_spikes[q + i]] * TSNN_W_WORDS];
        acc_batch(rp, r, first);
        first = 0;
        rows += r;
    }
    if (first) { /* no row since the last spill (or at all) */
        for (q = 0; q < ACC_WORDS; q++)
            accw[q] = 0;
    }
    if (wide)
        spill_fields(0);
    return wide;
}

/* The sum of weight codes of storage index n this step */
TSNN_INLINE uint32_t acc_of(uint32_t n, int wide)
{
    if (wide)
        return acc32[n];
    return FIELD(accw[n / FIELDS], SLOT(n % FIELDS));
}

/* ---- the excitatory layer --------------------------------------------------------------------
 * The pass updates every neuron as if it took its current (not refractory) and were not an
 * inhibition source; it writes the neurons over threshold to crossed[] (with u = RESET) and
 * returns their number. The special neurons are redone afterwards (fix_specials). */

/* The plain update in the contract's own widths: any model. */
TSNN_NOINLINE uint32_t pass_generic(exc_v_t lat_all, int wide)
{
    uint32_t n, nc = 0;
    for (n = 0; n < NPAD; n++) {
        exc_v_t v = exc_leak(U_GET(n)) + exc_align(acc_of(n, wide)) + lat_all;
        v = exc_clamp(v);
        U_SET(n, v);
        if (UNLIKELY(v >= EXC_TH(n))) {
            U_SET(n, (exc_v_t)TSNN_EXC_RESET);
            crossed[nc++] = (uint16_t)n;
        }
    }
    return nc;
}

/* The folded update: u' = sat((u * D + bias_lat + c * 2^(FD + LSHIFT)) >> FD) with
 * bias_lat = bias + lat_all * 2^FD, in 32 bits (the caller checks the bounds). */
#define FOLD_POSSIBLE                                                                           \
    (!SIMD16 && !TSNN_EXC_V64 && !TSNN_EXC_LEAK64 && TSNN_EXC_FD + TSNN_ALIGN_LSHIFT <= 30)
#if FOLD_POSSIBLE
#if defined(__ARM_FEATURE_SAT) && defined(TSNN_EXC_U_BITS)
#if TSNN_EXC_U_BITS >= 1 && TSNN_EXC_U_BITS <= 32
#define EXC_SAT(v) __ssat((v), TSNN_EXC_U_BITS)
#endif
#endif
#ifndef EXC_SAT
#define EXC_SAT(v) exc_clamp(v)
#endif
#define FOLD_SHIFT (TSNN_EXC_FD + TSNN_ALIGN_LSHIFT)
#define FOLD_CMAX ((int64_t)(FIELD_MAX >> TSNN_ALIGN_RSHIFT) << TSNN_ALIGN_LSHIFT)

#if TSNN_ALIGN_RSHIFT >= FIELD_BITS
#define FOLD_FIELD(x, s) 0u /* align() drops every bit a field can hold */
#else
#define FOLD_FIELD(x, s)                                                                        \
    (((x) >> (FIELD_BITS * SLOT(s) + TSNN_ALIGN_RSHIFT)) & (FIELD_MAX >> TSNN_ALIGN_RSHIFT))
#endif

/* u and th of cell c (one LDRD on Thumb-2: GCC splits a 64-bit load it only needs the halves
 * of, and a load counts as an instruction) */
#if defined(__GNUC__) && defined(__thumb2__) && !TSNN_EXC_TH_UNIFORM
#define LOAD_CELL(base, s, uu, tt)                                                              \
    __asm__("ldrd %0, %1, [%2, #%c3]"                                                           \
            : "=r"(uu), "=r"(tt)                                                                \
            : "r"(base), "i"((s) * CELL * sizeof(exc_v_t)),                                     \
              "m"(*(const exc_v_t(*)[CELL])((base) + (s) * CELL)))
#elif TSNN_EXC_TH_UNIFORM
#define LOAD_CELL(base, s, uu, tt)                                                              \
    ((void)((uu) = (base)[(s) * CELL]), (void)((tt) = (exc_v_t)(TSNN_EXC_TH_VALUE)))
#else
#define LOAD_CELL(base, s, uu, tt)                                                              \
    ((void)((uu) = (base)[(s) * CELL]), (void)((tt) = (base)[(s) * CELL + 1u]))
#endif

#define FOLD_NEURON(s)                                                                          \
    do {                                                                                        \
        uint32_t c = FOLD_FIELD(x, s);                                                          \
        int32_t p, v, uu, tt;                                                                   \
        OPAQUE(c);                                                                              \
        LOAD_CELL(u, s, uu, tt);                                                                \
        p = uu * (int32_t)TSNN_EXC_D + (bias_lat + (int32_t)(c << FOLD_SHIFT));                 \
        v = EXC_SAT(ASR(p, TSNN_EXC_FD));                                                       \
        u[(s) * CELL] = v;                                                                      \
        if (UNLIKELY(v >= tt)) {                                                                \
            u[(s) * CELL] = (exc_v_t)TSNN_EXC_RESET;                                            \
            crossed[nc++] = (uint16_t)((uint32_t)(u - cell) / CELL + (s));                      \
        }                                                                                       \
    } while (0)

TSNN_NOINLINE uint32_t pass_fold(int32_t bias_lat)
{
    const uint32_t *a = accw;
    exc_v_t *u = cell;
    uint32_t nc = 0;
    do {
        const uint32_t x = *a++;
        FOLD_NEURON(0u);
        FOLD_NEURON(1u);
#if FIELDS == 4u
        FOLD_NEURON(2u);
        FOLD_NEURON(3u);
#endif
        u += FIELDS * CELL;
    } while (a != accw + ACC_WORDS);
    return nc;
}

/* bias_lat for this lat_all, or 0 with *ok = 0 when a 32-bit sum could overflow */
static int32_t fold_bias(exc_v_t lat_all, int *ok)
{
    const int64_t scale = (int64_t)1 << TSNN_EXC_FD;
    const int64_t bl = (int64_t)TSNN_EXC_ROUND_BIAS + (int64_t)lat_all * scale;
    const int64_t bl_hi = bl + FOLD_CMAX * scale;
    const int64_t lo = (int64_t)TSNN_EXC_U_MIN * (int64_t)TSNN_EXC_D + (int64_t)lat_all * scale;
    const int64_t hi = (int64_t)TSNN_EXC_U_MAX * (int64_t)TSNN_EXC_D + bl_hi;
    const int64_t lim = (int64_t)0x7FFFFFFF;
    *ok = bl >= -lim - 1 && bl_hi <= lim && lo >= -lim - 1 && hi <= lim
          && FOLD_CMAX * scale <= lim;
    return *ok ? (int32_t)bl : 0;
}
#endif

#if SIMD16
/* The M4's pairs: for the two neurons of a halfword pair (bytes 0 and 2, or 1 and 3, of a field
 * word, which UXTB16 extracts together):
 *   p = u * D + bias                      SMLABB / SMLATB (16 x 16 + 32 bits, exact)
 *   leak = p >> FD, both packed           LSL + PKHTB
 *   cur = (c << LSHIFT) + lat_all         LSL + SADD16 (exact: the caller checks the range)
 *   u' = sat16(leak + cur)                QADD16: the exact sum saturated, as the contract's
 *                                         clamp to a 16-bit format
 *   d = sat16(u' - th16)                  QSUB16: d < 0 iff u' < th16
 * and one branch per four neurons when none of them can have crossed (all four d < 0). th16 is
 * the threshold saturated to 16 bits: u' >= th implies u' >= th16, the candidates are then
 * checked against the exact thresholds. */
#define SIMD_ASM(insn, r, a, b) __asm__(insn " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b))
TSNN_INLINE uint32_t uxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* two words at base + off (one LDRD; GCC emits two loads) */
#define LDRD_AT(base, off, a, b)                                                                \
    __asm__("ldrd %0, %1, [%2, #%c3]"                                                           \
            : "=r"(a), "=r"(b)                                                                  \
            : "r"(base), "i"((off) * 4u), "m"(*(const uint32_t(*)[2])((base) + (off))))

TSNN_INLINE uint32_t leak_pair(uint32_t upair)
{
    const int32_t plo = __smlabb((int32_t)upair, (int32_t)TSNN_EXC_D, (int32_t)TSNN_EXC_ROUND_BIAS);
    const int32_t phi = __smlatb((int32_t)upair, (int32_t)TSNN_EXC_D, (int32_t)TSNN_EXC_ROUND_BIAS);
    const uint32_t hi = (uint32_t)phi << (16u - TSNN_EXC_FD);
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #%c3" : "=r"(r) : "r"(hi), "r"(plo), "i"(TSNN_EXC_FD));
    return r;
}

/* the four neurons of field word m (their new potentials stored): the exact threshold test */
static uint32_t simd_cross(uint32_t m, uint32_t nc)
{
    uint32_t s;
    for (s = 0; s < 4u; s++) {
        const uint32_t n = m * 4u + s;
        const exc_v_t v = U_GET(n);
        if (v >= EXC_TH(n)) {
            U_SET(n, (exc_v_t)TSNN_EXC_RESET);
            crossed[nc++] = (uint16_t)n;
        }
    }
    return nc;
}

/* One field word's four neurons (their potential and threshold words at q), in one block of
 * Thumb-2 so that no instruction is wasted; leaves the candidate test word in t. */
#if TSNN_ALIGN_LSHIFT > 0
#define SIMD_LSL_C "lsl %[c], %[c], %[ls]\n\t"
#else
#define SIMD_LSL_C ""
#endif
#if TSNN_EXC_FD < 16
#define SIMD_LSL_HI(r) "lsl " r ", " r ", %[hs]\n\t"
#else
#define SIMD_LSL_HI(r) ""
#endif
#define SIMD_PAIR(u, ror, lat)                                                                  \
    "smlabb %[t], " u ", %[d], %[b]\n\t"                                                         \
    "smlatb " u ", " u ", %[d], %[b]\n\t"                                                        \
    "uxtb16 %[c], %[x]" ror "\n\t"                                                              \
    SIMD_LSL_HI(u)                                                                              \
    "pkhtb " u ", " u ", %[t], asr %[fd]\n\t"                                                    \
    SIMD_LSL_C lat                                                                              \
    "qadd16 " u ", " u ", %[c]\n\t"
#if TSNN_EXC_TH_UNIFORM
#define SIMD_TH_LOAD "mov %[t], %[thc]\n\tmov %[c], %[thc]\n\t"
#define SIMD_STEP "strd %[u01], %[u23], [%[q]], #8\n\t"
#else
#define SIMD_TH_LOAD "ldrd %[t], %[c], [%[q], #8]\n\t"
#define SIMD_STEP "strd %[u01], %[u23], [%[q]], #16\n\t"
#endif
#define SIMD_GROUP(LAT)                                                                         \
    "ldr %[x], [%[a]]\n\t"                                                                       \
    "ldrd %[u01], %[u23], [%[q]]\n\t"                                                            \
    SIMD_PAIR("%[u01]", "", LAT)                                                                \
    SIMD_PAIR("%[u23]", ", ror #8", LAT)                                                        \
    SIMD_TH_LOAD                                                                                \
    "qsub16 %[t], %[u01], %[t]\n\t"                                                              \
    "qsub16 %[c], %[u23], %[c]\n\t"                                                              \
    SIMD_STEP                                                                                   \
    "and %[t], %[t], %[c]"

#if TSNN_EXC_TH_UNIFORM
#define SIMD_THC_VALUE                                                                          \
    ((((uint32_t)(TSNN_EXC_TH_VALUE > 32767 ? 32767 : TSNN_EXC_TH_VALUE < -32768 ? -32768       \
                  : TSNN_EXC_TH_VALUE)) & 0xFFFFu) * 0x10001u)
#else
#define SIMD_THC_VALUE 0u
#endif

TSNN_INLINE uint32_t pass_simd_body(uint32_t latpair, const int with_lat)
{
    const uint32_t *a = accw;
    uint32_t *q = quad;
    const uint32_t thc = SIMD_THC_VALUE;
    uint16_t *const cand = crossed + NPAD - ACC_WORDS; /* field words with a candidate */
    uint32_t nc = 0, nk = 0, k;
    (void)thc;
    (void)latpair;
    do {
        uint32_t x, u01, u23, t, c;
        if (with_lat) {
            __asm__(SIMD_GROUP("sadd16 %[c], %[c], %[lat]\n\t")
                    : [x] "=&r"(x), [u01] "=&r"(u01), [u23] "=&r"(u23), [t] "=&r"(t),
                      [c] "=&r"(c), [q] "+r"(q)
                    : [a] "r"(a), [d] "r"((int32_t)TSNN_EXC_D),
                      [b] "r"((int32_t)TSNN_EXC_ROUND_BIAS), [lat] "r"(latpair), [thc] "r"(thc), [ls] "i"(TSNN_ALIGN_LSHIFT),
                      [hs] "i"(16 - TSNN_EXC_FD), [fd] "i"(TSNN_EXC_FD)
                    : "memory");
        } else {
            __asm__(SIMD_GROUP("")
                    : [x] "=&r"(x), [u01] "=&r"(u01), [u23] "=&r"(u23), [t] "=&r"(t),
                      [c] "=&r"(c), [q] "+r"(q)
                    : [a] "r"(a), [d] "r"((int32_t)TSNN_EXC_D),
                      [b] "r"((int32_t)TSNN_EXC_ROUND_BIAS), [thc] "r"(thc), [ls] "i"(TSNN_ALIGN_LSHIFT), [hs] "i"(16 - TSNN_EXC_FD),
                      [fd] "i"(TSNN_EXC_FD)
                    : "memory");
        }
        a++;
        if (UNLIKELY((int32_t)(t & (t << 16)) >= 0)) /* a sign bit clear: a candidate */
            cand[nk++] = (uint16_t)(a - accw - 1);
    } while (a != accw + ACC_WORDS);
    for (k = 0; k < nk; k++)
        nc = simd_cross(cand[k], nc);
    return nc;
}

TSNN_NOINLINE uint32_t pass_simd(uint32_t latpair) { return pass_simd_body(latpair, 1); }
TSNN_NOINLINE uint32_t pass_simd_nolat(void) { return pass_simd_body(0, 0); }
#endif

/* The exact rule for neuron n whose potential before the step was u0 (section 6). Returns 1
 * when it crossed its threshold (then u = RESET, ref = REFRAC). ref is kept at >= 0: "ref <= 0"
 * and "ref == 0 after clamping" are the same test, and a clamped counter fits a byte. */
static int exact_update(uint32_t n, exc_v_t u0, exc_v_t lat_all, int wide)
{
    exc_v_t v = exc_leak(u0);
    if (ref_exc[n] == 0) {
        exc_v_t cur = exc_align(acc_of(n, wide)) + lat_all;
        if (flags[n] & F_SOURCE)
            cur -= (exc_v_t)TSNN_LAT; /* only the others are inhibited */
        v += cur;
    } else {
        ref_exc[n]--;
    }
    v = exc_clamp(v);
    if (v >= EXC_TH(n)) {
        U_SET(n, (exc_v_t)TSNN_EXC_RESET);
        ref_exc[n] = (tsnn_exc_ref_t)TSNN_EXC_REFRAC;
        return 1;
    }
    U_SET(n, v);
    return 0;
}

/* One step of the excitatory layer: writes the spikes (neuron numbers) to exc_list, returns
 * their number. */
static uint32_t exc_step(uint32_t skey, int wide)
{
    const exc_v_t lat_all = (exc_v_t)TSNN_LAT * (exc_v_t)n_src;
    uint32_t q, nc, ns = 0, keep, n_exc;

    /* the special neurons: refractory ones, and sources that are not */
    for (q = 0; q < n_refr; q++) {
        const uint32_t n = refr[q];
        flags[n] |= F_SPECIAL;
        special[ns] = (uint16_t)n;
        special_u[ns++] = U_GET(n);
    }
    for (q = 0; q < n_src; q++) {
        const uint32_t n = src_list[q];
        if (!(flags[n] & F_SPECIAL)) {
            flags[n] |= F_SPECIAL;
            special[ns] = (uint16_t)n;
            special_u[ns++] = U_GET(n);
        }
    }

    nc = 0;
#if SIMD16
    if (!wide && lat_all == 0) {
        nc = pass_simd_nolat();
    } else if (!wide && lat_all >= -32768 && lat_all <= 32767 - (255 << TSNN_ALIGN_LSHIFT)) {
        nc = pass_simd(((uint32_t)lat_all & 0xFFFFu) * 0x10001u);
    } else
#elif FOLD_POSSIBLE
    if (!wide) {
        static exc_v_t cached_lat = 0;
        static int32_t cached_bias = 0;
        static int cached_ok = -1;
        if (cached_ok < 0 || lat_all != cached_lat) {
            cached_bias = fold_bias(lat_all, &cached_ok);
            cached_lat = lat_all;
        }
        if (cached_ok)
            nc = pass_fold(cached_bias);
        else
            nc = pass_generic(lat_all, 0);
    } else
#endif
        nc = pass_generic(lat_all, wide);

    /* drop the pass's verdict on special neurons and padding, redo the specials exactly */
    keep = 0;
    for (q = 0; q < nc; q++) {
        const uint32_t n = crossed[q];
        if (!(flags[n] & F_SPECIAL) && n_to_j(n) < TSNN_N)
            crossed[keep++] = (uint16_t)n;
    }
    nc = keep;
    n_refr = 0;
    for (q = 0; q < nc; q++) { /* the plain neurons over threshold become refractory */
        const uint32_t n = crossed[q];
        ref_exc[n] = (tsnn_exc_ref_t)TSNN_EXC_REFRAC;
#if TSNN_EXC_REFRAC > 0
        refr[n_refr++] = (uint16_t)n;
#endif
    }
    for (q = 0; q < ns; q++) {
        const uint32_t n = special[q];
        if (exact_update(n, special_u[q], lat_all, wide))
            crossed[nc++] = (uint16_t)n;
        if (ref_exc[n] > 0)
            refr[n_refr++] = (uint16_t)n;
        flags[n] = (uint8_t)(flags[n] & ~F_SPECIAL);
    }

    /* the spikes, as neuron numbers */
    for (q = 0; q < nc; q++)
        exc_list[q] = (uint16_t)n_to_j(crossed[q]);
    n_exc = nc;
#if TSNN_EXC_ONE_SPIKE
    if (n_exc > 1u) { /* one winner, counted in increasing j; the others stay reset */
        const uint32_t r = fmix32(skey + INDEX_MUL * WINNER_INDEX);
        uint32_t i, k;
        for (i = 1; i < n_exc; i++) { /* insertion sort (a handful of neurons) */
            const uint16_t v = exc_list[i];
            for (k = i; k > 0 && exc_list[k - 1] > v; k--)
                exc_list[k] = exc_list[k - 1];
            exc_list[k] = v;
        }
        exc_list[0] = exc_list[r % n_exc];
        n_exc = 1;
    }
#else
    (void)skey;
#endif
    return n_exc;
}

/* Replace the inhibition sources (flags and list) by the neurons j in list[0..n). */
static void set_sources(const uint16_t *list, uint32_t n)
{
    uint32_t q;
    for (q = 0; q < n_src; q++)
        flags[src_list[q]] = (uint8_t)(flags[src_list[q]] & ~F_SOURCE);
    for (q = 0; q < n; q++) {
        const uint32_t s = j_to_n(list[q]);
        flags[s] |= F_SOURCE;
        src_list[q] = (uint16_t)s;
    }
    n_src = n;
}

#if TSNN_HAS_INH
/* The inhibitory layer (Diehl & Cook): input EI from the excitatory spikes of step t-1. */
static uint32_t inh_step(void)
{
    uint32_t j, n_inh = 0;
    for (j = 0; j < TSNN_N; j++) {
        inh_v_t v = inh_leak((inh_v_t)u_inh[j]);
        if (ref_inh[j] == 0) {
            if (exc_prev_flag[j])
                v += (inh_v_t)TSNN_EI;
        } else {
            ref_inh[j]--;
        }
        if (v < (inh_v_t)TSNN_INH_U_MIN)
            v = (inh_v_t)TSNN_INH_U_MIN;
        else if (v > (inh_v_t)TSNN_INH_U_MAX)
            v = (inh_v_t)TSNN_INH_U_MAX;
        if (v >= INH_TH(j)) {
            u_inh[j] = (tsnn_inh_u_t)TSNN_INH_RESET;
            ref_inh[j] = (tsnn_inh_ref_t)TSNN_INH_REFRAC;
            inh_list[n_inh++] = (uint16_t)j;
        } else {
            u_inh[j] = (tsnn_inh_u_t)v;
        }
    }
#if TSNN_INH_ONE_SPIKE
    if (n_inh > 1u) /* as intsim: the inhibitory layer draws no winner (index 0) */
        n_inh = 1;
#endif
    return n_inh;
}
#endif

/* ---- classification and early exit (sections 6 and 7) ------------------------------------- */

/* The leading class over class sums: argmax_c S_c / n_c by cross-multiplication, ties to the
 * lowest class, classes without neurons score 0. */
static uint32_t leader(const uint32_t *sums)
{
    uint64_t best_sum = 0, best_n = 1;
    uint32_t c, best = 0;
    for (c = 0; c < TSNN_CLASSES; c++) {
        const uint64_t n_c = tsnn_class_size[c] ? tsnn_class_size[c] : 1u;
        const uint64_t s_c = tsnn_class_size[c] ? sums[c] : 0u;
        if (s_c * best_n > best_sum * n_c) {
            best = c;
            best_sum = s_c;
            best_n = n_c;
        }
    }
    return best;
}

#if TSNN_EXIT_MARGIN > 0
/* S_a * n_b - S_b * n_a >= EXIT_MARGIN * n_b for every class b != a (the caller checks
 * MIN_SPIKES) */
static int exit_reached(void)
{
    const uint32_t a = leader(class_sum);
    const uint64_t n_a = tsnn_class_size[a] ? tsnn_class_size[a] : 1u;
    const uint64_t s_a = tsnn_class_size[a] ? class_sum[a] : 0u;
    uint32_t b;
    for (b = 0; b < TSNN_CLASSES; b++) {
        const uint64_t n_b = tsnn_class_size[b] ? tsnn_class_size[b] : 1u;
        const uint64_t s_b = tsnn_class_size[b] ? class_sum[b] : 0u;
        if (b != a && s_a * n_b < s_b * n_a + (uint64_t)TSNN_EXIT_MARGIN * n_b)
            return 0;
    }
    return 1;
}
#endif

/* ---- a presentation -------------------------------------------------------------------------- */

/* One presentation k (docs/fixed-point.md section 6). Returns the number of spikes. */
static uint32_t present(const uint8_t *image, uint32_t n_nz, uint32_t sample_key, uint32_t k,
                        uint16_t *counts)
{
    const uint32_t rate = tsnn_rate[k];
    uint32_t j, t, q, total = 0;

    for (q = 0; q < n_nz; q++)
        px[q].t1 = (uint32_t)image[px_index[q]] * rate | 0xFFFFu;
    px[n_nz].h = 0; /* the spare: exact check refuses it */
    px[n_nz].t1 = 0;
    for (q = 0; q < n_refr; q++)
        ref_exc[refr[q]] = 0;
    n_refr = 0;
    set_sources(exc_list, 0);
    for (q = 0; q < NPAD; q++)
        U_SET(q, 0);
    for (j = 0; j < TSNN_N; j++) {
        counts[j] = 0;
#if TSNN_HAS_INH
        u_inh[j] = 0;
        ref_inh[j] = 0;
        exc_prev_flag[j] = 0;
#endif
    }
    for (q = 0; q < TSNN_CLASSES; q++)
        class_sum[q] = 0;
#if TSNN_HAS_INH
    n_exc_prev = 0;
#endif

    for (t = 0; t < TSNN_T; t++) {
        const uint32_t g = k * TSNN_T + t;
        const uint32_t skey = fmix32(sample_key ^ (STEP_MUL * g));
        const int wide = inputs(skey, n_nz, image, rate);
        const uint32_t n_exc = exc_step(skey, wide);

#if TSNN_HAS_INH
        {
            const uint32_t n_inh = inh_step();
            set_sources(inh_list, n_inh);
            for (q = 0; q < n_exc_prev; q++)
                exc_prev_flag[exc_prev_list[q]] = 0;
            for (q = 0; q < n_exc; q++) {
                exc_prev_flag[exc_list[q]] = 1;
                exc_prev_list[q] = exc_list[q];
            }
            n_exc_prev = n_exc;
        }
#else
        set_sources(exc_list, n_exc);
#endif
        if (n_exc) {
            for (q = 0; q < n_exc; q++) {
                const uint32_t s = exc_list[q];
                counts[s]++;
                if (tsnn_assign[s] >= 0)
                    class_sum[(uint32_t)tsnn_assign[s]]++;
            }
            total += n_exc;
#if TSNN_EXIT_MARGIN > 0
#if TSNN_MIN_SPIKES > 0
            if (total >= TSNN_MIN_SPIKES && exit_reached())
#else
            if (exit_reached())
#endif
                break; /* early exit: the counts are final */
#endif
        }
    }
    return total;
}

/* All-activity vote (section 7) */
static uint8_t classify(const uint16_t *counts)
{
    uint32_t sums[TSNN_CLASSES];
    uint32_t c, j;
    for (c = 0; c < TSNN_CLASSES; c++)
        sums[c] = 0;
    for (j = 0; j < TSNN_N; j++) {
        if (tsnn_assign[j] >= 0)
            sums[(uint32_t)tsnn_assign[j]] += counts[j];
    }
    return (uint8_t)leader(sums);
}

static void init_tables(void)
{
    static int done = 0;
    uint32_t n;
    if (done)
        return;
#if !TSNN_EXC_TH_UNIFORM && SIMD16
    for (n = 0; n < NPAD; n++) { /* the exact thresholds saturated to 16 bits */
        const exc_v_t th = th_exact(n);
        const uint32_t h = (uint32_t)(th > 32767 ? 32767 : th < -32768 ? -32768 : th) & 0xFFFFu;
        uint32_t *w = &quad[(n >> 2) * QUAD + 2u + ((n >> 1) & 1u)];
        *w = (*w & ~(0xFFFFu << (16u * (n & 1u)))) | (h << (16u * (n & 1u)));
    }
#elif !TSNN_EXC_TH_UNIFORM
    for (n = 0; n < NPAD; n++) {
        const uint32_t j = n_to_j(n);
        cell[n * CELL + 1u] = j < TSNN_N ? (exc_v_t)tsnn_exc_th[j] : (exc_v_t)TSNN_EXC_U_MAX + 1;
    }
#else
    (void)n;
#endif
    done = 1;
}

int tsnn_infer(const uint8_t image[TSNN_IMAGE_BYTES], uint32_t seed, uint32_t sample_id,
               uint16_t *spike_counts, uint8_t *prediction)
{
    const uint32_t sample_key = fmix32(seed + GOLDEN * sample_id);
    uint32_t i, k, n_nz = 0;
    if (image == 0 || spike_counts == 0 || prediction == 0)
        return 1;
    init_tables();
    for (i = 0; i < TSNN_IMAGE_BYTES; i++) {
        if (image[i]) {
            px[n_nz].h = INDEX_MUL * i;
            px_index[n_nz++] = (uint16_t)i;
        }
    }
    /* retry rule: present again at the next rate while too few spikes (section 6) */
#if TSNN_MIN_SPIKES == 0
    k = 0;
    (void)present(image, n_nz, sample_key, k, spike_counts);
#else
    for (k = 0; k < TSNN_N_RATES; k++) {
        if (present(image, n_nz, sample_key, k, spike_counts) >= TSNN_MIN_SPIKES)
            break;
    }
#endif
    *prediction = classify(spike_counts);
    return 0;
}
