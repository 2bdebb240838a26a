/* tinySNN integer inference engine: docs/fixed-point.md sections 5 to 7, operation for
 * operation, for the constants that tinysnn_serial.codegen generates into model_data.c/.h.
 *
 * Portable C99: integer only, no heap, no floating point, no library calls. All state is in
 * static arrays sized at compile time. The host's oracle is tinysnn_core.intsim; the tests
 * compare spike counts and predictions for every sample.
 *
 * Speed (event-driven): per time step, only the non-zero pixels draw a random number, and only
 * the pixels that spike add their packed weight row to the accumulators (one 32-bit load per
 * 32 / bits weights, unpacked with shifts and a mask in an unrolled inner loop). The neuron
 * update is one pass over N. Widths: the generator proves 32-bit arithmetic exact for the
 * model's constants or asks for 64-bit (TSNN_*_V64, TSNN_*_LEAK64). */
#include <stdint.h>

#include "engine.h"
#include "model_data.h"

#define GOLDEN 0x9E3779B9u
#define STEP_MUL 0x85EBCA77u
#define INDEX_MUL 0xC2B2AE3Du
#define WINNER_INDEX 0xFFFFu
#define ACC_LEN (TSNN_W_WORDS * 2u * TSNN_W_HALF)  /* N rounded up to whole words */
#define LANES_LEN (TSNN_W_WORDS * TSNN_W_HALF)     /* 32-bit words of two 16-bit lanes */

/* compile-time checks (a negative array size stops the build) */
typedef char tsnn_check_neurons[(TSNN_N == TSNN_N_NEURONS) ? 1 : -1];
typedef char tsnn_check_inputs[(TSNN_N_INPUTS == TSNN_IMAGE_BYTES) ? 1 : -1];
typedef char tsnn_check_classes[(TSNN_CLASSES == TSNN_N_CLASSES && TSNN_CLASSES <= 255u) ? 1 : -1];
typedef char tsnn_check_bits[(TSNN_W_BITS >= 1u && TSNN_W_BITS <= 16u) ? 1 : -1];
typedef char tsnn_check_steps[(TSNN_T >= 1u && TSNN_T <= 65535u) ? 1 : -1];

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

/* Arithmetic right shift rounding toward minus infinity, without relying on the
 * implementation-defined >> of negative values (compilers turn this into one shift). */
#define ASR(x, s) ((x) >= 0 ? ((x) >> (s)) : ~((~(x)) >> (s)))

/* MurmurHash3's fmix32 (a macro so that the per-pixel draw is inlined even at -Os) */
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
static int32_t acc[ACC_LEN];             /* sum of the weight codes of this step's input spikes */
static uint32_t lanes[LANES_LEN];        /* the same sums in flight, two 16-bit lanes a word */
static tsnn_exc_u_t u_exc[TSNN_N];       /* potentials u = v - rest (potential format codes) */
static tsnn_exc_ref_t ref_exc[TSNN_N];   /* refractory steps left (clamped at 0, see below) */
static uint8_t src_flag[TSNN_N];         /* 1: j's inhibition source spiked in step t-1 */
static uint16_t src_list[TSNN_N];        /* those sources */
static uint32_t n_src;
static uint16_t exc_list[TSNN_N];        /* excitatory spikes of step t */
static uint16_t nz[TSNN_IMAGE_BYTES];    /* indices of the non-zero pixels, increasing */
#if TSNN_HAS_INH
static tsnn_inh_u_t u_inh[TSNN_N];
static tsnn_inh_ref_t ref_inh[TSNN_N];
static uint8_t exc_prev_flag[TSNN_N];    /* excitatory spikes of step t-1 (the inh input) */
static uint16_t exc_prev_list[TSNN_N];
static uint32_t n_exc_prev;
static uint16_t inh_list[TSNN_N];        /* inhibitory spikes of step t */
#endif

#if TSNN_EXC_TH_UNIFORM
#define EXC_TH(j) ((exc_v_t)(TSNN_EXC_TH_VALUE))
#else
#define EXC_TH(j) ((exc_v_t)tsnn_exc_th[j])
#endif
#if TSNN_HAS_INH
#if TSNN_INH_TH_UNIFORM
#define INH_TH(j) ((inh_v_t)(TSNN_INH_TH_VALUE))
#else
#define INH_TH(j) ((inh_v_t)tsnn_inh_th[j])
#endif
#endif

/* Leak multiply mul_shift(u, D, FD): (u * D + bias) >> FD, floor. */
static exc_v_t exc_leak(exc_v_t u)
{
#if TSNN_EXC_LEAK64
    const int64_t p = (int64_t)u * (int64_t)TSNN_EXC_D + (int64_t)TSNN_EXC_ROUND_BIAS;
    return (exc_v_t)ASR(p, TSNN_EXC_FD);
#else
    const int32_t p = (int32_t)u * (int32_t)TSNN_EXC_D + (int32_t)TSNN_EXC_ROUND_BIAS;
    return (exc_v_t)ASR(p, TSNN_EXC_FD);
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

/* lanes += one packed weight row: code i of both halves of word w goes to lanes[w*HALF + i]
 * (low lane: neuron 2*HALF*w + i; high lane: neuron 2*HALF*w + HALF + i). A lane takes at
 * most TSNN_W_FLUSH rows before lanes_flush() must move it into acc. */
static void add_row(const uint32_t *row)
{
    uint32_t *l = lanes;
    uint32_t w;
    for (w = 0; w < TSNN_W_WORDS; w++) {
        const uint32_t x = row[w];
        /* unrolled by the preprocessor: HALF is 1..16 */
        l[0] += x & TSNN_W_LANE_MASK;
#if TSNN_W_HALF > 1
        l[1] += (x >> (TSNN_W_BITS * 1u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 2
        l[2] += (x >> (TSNN_W_BITS * 2u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 3
        l[3] += (x >> (TSNN_W_BITS * 3u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 4
        l[4] += (x >> (TSNN_W_BITS * 4u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 5
        l[5] += (x >> (TSNN_W_BITS * 5u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 6
        l[6] += (x >> (TSNN_W_BITS * 6u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 7
        l[7] += (x >> (TSNN_W_BITS * 7u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 8
        l[8] += (x >> (TSNN_W_BITS * 8u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 9
        l[9] += (x >> (TSNN_W_BITS * 9u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 10
        l[10] += (x >> (TSNN_W_BITS * 10u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 11
        l[11] += (x >> (TSNN_W_BITS * 11u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 12
        l[12] += (x >> (TSNN_W_BITS * 12u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 13
        l[13] += (x >> (TSNN_W_BITS * 13u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 14
        l[14] += (x >> (TSNN_W_BITS * 14u)) & TSNN_W_LANE_MASK;
#endif
#if TSNN_W_HALF > 15
        l[15] += (x >> (TSNN_W_BITS * 15u)) & TSNN_W_LANE_MASK;
#endif
        l += TSNN_W_HALF;
    }
}

/* acc[j] += lane of neuron j; lanes = 0 */
static void lanes_flush(void)
{
    uint32_t w, i;
    for (w = 0; w < TSNN_W_WORDS; w++) {
        for (i = 0; i < TSNN_W_HALF; i++) {
            const uint32_t v = lanes[w * TSNN_W_HALF + i];
            acc[2u * TSNN_W_HALF * w + i] += (int32_t)(v & 0xFFFFu);
            acc[2u * TSNN_W_HALF * w + TSNN_W_HALF + i] += (int32_t)(v >> 16);
            lanes[w * TSNN_W_HALF + i] = 0;
        }
    }
}

/* Replace the inhibition sources (flags and list) by the spikes in list[0..n). */
static void set_sources(const uint16_t *list, uint32_t n)
{
    uint32_t q;
    for (q = 0; q < n_src; q++)
        src_flag[src_list[q]] = 0;
    for (q = 0; q < n; q++) {
        src_flag[list[q]] = 1;
        src_list[q] = list[q];
    }
    n_src = n;
}

/* One presentation k (docs/fixed-point.md section 6). Returns the number of spikes. */
static uint32_t present(const uint8_t *image, uint32_t n_nz, uint32_t sample_key, uint32_t k,
                        uint16_t *counts)
{
    const uint32_t rate = tsnn_rate[k];
    uint32_t j, t, q, total = 0;

    for (j = 0; j < TSNN_N; j++) {
        u_exc[j] = 0;
        ref_exc[j] = 0;
        src_flag[j] = 0;
        counts[j] = 0;
#if TSNN_HAS_INH
        u_inh[j] = 0;
        ref_inh[j] = 0;
        exc_prev_flag[j] = 0;
#endif
    }
    n_src = 0;
#if TSNN_HAS_INH
    n_exc_prev = 0;
#endif

    for (t = 0; t < TSNN_T; t++) {
        const uint32_t g = k * TSNN_T + t;
        const uint32_t skey = fmix32(sample_key ^ (STEP_MUL * g));
        exc_v_t lat_all;
        uint32_t n_exc = 0;

        /* input spikes (section 5) and the sums of their weights (integer sums: the order
         * of the additions does not matter) */
        {
#if TSNN_W_FLUSH < TSNN_IMAGE_BYTES
            uint32_t rows = 0;
#endif
            for (j = 0; j < ACC_LEN; j++)
                acc[j] = 0;
            for (q = 0; q < n_nz; q++) {
                const uint32_t i = nz[q];
                uint32_t d = skey + INDEX_MUL * i;
                FMIX32(d);
                if (d < (uint32_t)image[i] * rate) {
                    add_row(&tsnn_w[i * TSNN_W_WORDS]);
#if TSNN_W_FLUSH < TSNN_IMAGE_BYTES
                    if (++rows == TSNN_W_FLUSH) {
                        lanes_flush();
                        rows = 0;
                    }
#endif
                }
            }
            lanes_flush();
        }

        /* excitatory layer. ref is kept at >= 0: "ref <= 0" and "ref == 0 after clamping"
         * are the same test, and a clamped counter fits a byte. */
        lat_all = (exc_v_t)TSNN_LAT * (exc_v_t)n_src;
        for (j = 0; j < TSNN_N; j++) {
            exc_v_t v = exc_leak((exc_v_t)u_exc[j]);
            if (ref_exc[j] == 0) {
#if TSNN_ALIGN_RSHIFT > 0
                exc_v_t cur = (exc_v_t)(acc[j] >> TSNN_ALIGN_RSHIFT);
#else
                exc_v_t cur = (exc_v_t)acc[j] << TSNN_ALIGN_LSHIFT;
#endif
                cur += lat_all;
                if (src_flag[j])
                    cur -= (exc_v_t)TSNN_LAT; /* only the others are inhibited */
                v += cur;
            } else {
                ref_exc[j]--;
            }
            if (v < (exc_v_t)TSNN_EXC_U_MIN)
                v = (exc_v_t)TSNN_EXC_U_MIN;
            else if (v > (exc_v_t)TSNN_EXC_U_MAX)
                v = (exc_v_t)TSNN_EXC_U_MAX;
            if (v >= EXC_TH(j)) {
                u_exc[j] = (tsnn_exc_u_t)TSNN_EXC_RESET;
                ref_exc[j] = (tsnn_exc_ref_t)TSNN_EXC_REFRAC;
                exc_list[n_exc++] = (uint16_t)j;
            } else {
                u_exc[j] = (tsnn_exc_u_t)v;
            }
        }
#if TSNN_EXC_ONE_SPIKE
        if (n_exc > 1u) { /* one winner; the others stay reset */
            const uint32_t r = fmix32(skey + INDEX_MUL * WINNER_INDEX);
            exc_list[0] = exc_list[r % n_exc];
            n_exc = 1;
        }
#endif

#if TSNN_HAS_INH
        {
            /* inhibitory layer: input EI from the excitatory spikes of step t-1 */
            uint32_t n_inh = 0;
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
        for (q = 0; q < n_exc; q++)
            counts[exc_list[q]]++;
        total += n_exc;
    }
    return total;
}

/* All-activity vote (section 7): argmax_c S_c / n_c by cross-multiplication, ties to the
 * lowest class, classes without neurons score 0. */
static uint8_t classify(const uint16_t *counts)
{
    uint32_t sums[TSNN_CLASSES];
    uint64_t best_sum = 0, best_n = 1;
    uint32_t c, j, best = 0;
    for (c = 0; c < TSNN_CLASSES; c++)
        sums[c] = 0;
    for (j = 0; j < TSNN_N; j++) {
        if (tsnn_assign[j] >= 0)
            sums[(uint32_t)tsnn_assign[j]] += counts[j];
    }
    for (c = 0; c < TSNN_CLASSES; c++) {
        const uint64_t n_c = tsnn_class_size[c] ? tsnn_class_size[c] : 1u;
        const uint64_t s_c = tsnn_class_size[c] ? sums[c] : 0u;
        if (s_c * best_n > best_sum * n_c) {
            best = c;
            best_sum = s_c;
            best_n = n_c;
        }
    }
    return (uint8_t)best;
}

int tsnn_infer(const uint8_t image[TSNN_IMAGE_BYTES], uint32_t seed, uint32_t sample_id,
               uint16_t *spike_counts, uint8_t *prediction)
{
    const uint32_t sample_key = fmix32(seed + GOLDEN * sample_id);
    uint32_t i, k, n_nz = 0;
    if (image == 0 || spike_counts == 0 || prediction == 0)
        return 1;
    for (i = 0; i < TSNN_IMAGE_BYTES; i++) {
        if (image[i])
            nz[n_nz++] = (uint16_t)i;
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
