/* tinySNN generic integer engine: docs/fixed-point.md sections 5 to 7, written plainly, for
 * models whose neuron model is a plugin's (docs/plugins.md, "Neuron models").
 *
 * The neuron update is not here: the generator copies the plugin's C step into the engine
 * directory as neuron_step.h, which defines
 *     static int tsnn_neuron_step(int64_t *u, int32_t *ref, int64_t cur, int64_t th);
 * Everything else (input draws, weight rows, lateral inhibition, one-spike winner, early exit,
 * retries, the vote) is the contract's and the same as in engine/engine.c, without that engine's
 * speed work: one neuron at a time, 64-bit potentials. Direct lateral inhibition only (the
 * tinysnn topology); the generator refuses an inhibitory layer. Portable C99, integer only, no
 * heap, static state. The host's oracle is tinysnn_core.intsim. */
#include <stdint.h>

#include "engine.h"
#include "model_data.h"
#include "neuron_step.h"

#define GOLDEN 0x9E3779B9u
#define STEP_MUL 0x85EBCA77u
#define INDEX_MUL 0xC2B2AE3Du
#define WINNER_INDEX 0xFFFFu

typedef char tsnn_check_neurons[(TSNN_N == TSNN_N_NEURONS) ? 1 : -1];
typedef char tsnn_check_inputs[(TSNN_N_INPUTS == TSNN_IMAGE_BYTES) ? 1 : -1];
typedef char tsnn_check_classes[(TSNN_CLASSES == TSNN_N_CLASSES && TSNN_CLASSES <= 255u) ? 1 : -1];

/* a variable, not the macro: with MIN_SPIKES 0 a comparison with the constant is always true,
 * which -Wtype-limits (-Wextra) reports */
static const uint32_t min_spikes = TSNN_MIN_SPIKES;

/* arithmetic right shift rounding toward minus infinity, for any sign */
#define ASR(x, s) ((x) >= 0 ? ((x) >> (s)) : ~((~(x)) >> (s)))

static uint32_t fmix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    return x;
}

static int64_t u[TSNN_N];
static int32_t ref[TSNN_N];
static uint8_t src_prev[TSNN_N];  /* the layer's spikes of step t-1 (the inhibition sources) */
static uint8_t crossed[TSNN_N];
static int32_t acc[TSNN_N];       /* this step's weight sum (<= 784 * (2^16 - 1) < 2^31) */
static uint16_t counts[TSNN_N];
static uint16_t nz[TSNN_IMAGE_BYTES];
static uint16_t in_spikes[TSNN_IMAGE_BYTES];

/* adds pixel i's row of weight codes (codegen.pack_weights: word w, half h, code b holds
 * neuron 2 * HALF * w + HALF * h + b at bit 16 * h + BITS * b) */
static void add_row(uint32_t i)
{
    const uint32_t *row = tsnn_w + i * TSNN_W_WORDS;
    uint32_t w, h, b;
    for (w = 0; w < TSNN_W_WORDS; w++) {
        const uint32_t word = row[w];
        for (h = 0; h < 2u; h++) {
            for (b = 0; b < TSNN_W_HALF; b++) {
                const uint32_t j = 2u * TSNN_W_HALF * w + TSNN_W_HALF * h + b;
                if (j < TSNN_N)
                    acc[j] += (int32_t)((word >> (16u * h + TSNN_W_BITS * b))
                                        & ((1u << TSNN_W_BITS) - 1u));
            }
        }
    }
}

static int64_t align_current(int32_t a)
{
#if TSNN_ALIGN_RSHIFT > 0
    return ASR((int64_t)a, TSNN_ALIGN_RSHIFT);
#else
    return (int64_t)a * ((int64_t)1 << TSNN_ALIGN_LSHIFT);
#endif
}

/* section 7's winner over class sums; *lead_sum and *lead_n its score */
static uint32_t leader(const uint32_t *sums, int64_t *lead_sum, int64_t *lead_n)
{
    uint32_t c, best = 0;
    int64_t best_sum = 0, best_n = 1;
    for (c = 0; c < TSNN_CLASSES; c++) {
        const int64_t s = tsnn_class_size[c] ? (int64_t)sums[c] : 0;
        const int64_t n = tsnn_class_size[c] ? (int64_t)tsnn_class_size[c] : 1;
        if (s * best_n > best_sum * n) {
            best = c;
            best_sum = s;
            best_n = n;
        }
    }
    *lead_sum = best_sum;
    *lead_n = best_n;
    return best;
}

static void class_sums(uint32_t *sums)
{
    uint32_t c, j;
    for (c = 0; c < TSNN_CLASSES; c++)
        sums[c] = 0;
    for (j = 0; j < TSNN_N; j++)
        if (tsnn_assign[j] >= 0)
            sums[(uint32_t)tsnn_assign[j]] += counts[j];
}

#if TSNN_EXIT_MARGIN > 0
/* the early-exit rule of section 6 */
static int exit_reached(uint32_t total)
{
    uint32_t sums[TSNN_CLASSES];
    int64_t s_a, n_a;
    uint32_t a, b;
    if (total < min_spikes)
        return 0;
    class_sums(sums);
    a = leader(sums, &s_a, &n_a);
    for (b = 0; b < TSNN_CLASSES; b++) {
        const int64_t s_b = tsnn_class_size[b] ? (int64_t)sums[b] : 0;
        const int64_t n_b = tsnn_class_size[b] ? (int64_t)tsnn_class_size[b] : 1;
        if (b != a && s_a * n_b - s_b * n_a < (int64_t)TSNN_EXIT_MARGIN * n_b)
            return 0;
    }
    return 1;
}
#endif

/* one presentation k; returns the number of spikes */
static uint32_t present(const uint8_t *image, uint32_t n_nz, uint32_t skey, uint32_t k)
{
    const uint32_t rate = tsnn_rate[k];
    uint32_t t, j, q, n_src = 0, total = 0;
    for (j = 0; j < TSNN_N; j++) {
        u[j] = 0;
        ref[j] = 0;
        src_prev[j] = 0;
        counts[j] = 0;
    }
    for (t = 0; t < TSNN_T; t++) {
        const uint32_t step_key = fmix32(skey ^ (STEP_MUL * (k * TSNN_T + t)));
        uint32_t n_in = 0, n_cross = 0, n_spikes = 0;
        for (q = 0; q < n_nz; q++) {
            const uint32_t i = nz[q];
            if (fmix32(step_key + INDEX_MUL * i) < (uint32_t)image[i] * rate)
                in_spikes[n_in++] = (uint16_t)i;
        }
        for (j = 0; j < TSNN_N; j++)
            acc[j] = 0;
        for (q = 0; q < n_in; q++)
            add_row(in_spikes[q]);
        for (j = 0; j < TSNN_N; j++) {
            /* only the others are inhibited */
            const int64_t cur = align_current(acc[j])
                                + (int64_t)TSNN_LAT * (int64_t)(n_src - src_prev[j]);
            crossed[j] = (uint8_t)tsnn_neuron_step(&u[j], &ref[j], cur, (int64_t)TSNN_TH(j));
            n_cross += crossed[j];
        }
#if TSNN_ONE_SPIKE
        if (n_cross > 1u) { /* crossing neuron number (draw mod count), in increasing j */
            uint32_t keep = fmix32(step_key + INDEX_MUL * WINNER_INDEX) % n_cross;
            for (j = 0; j < TSNN_N; j++) {
                if (crossed[j]) {
                    crossed[j] = keep == 0u;
                    keep--;
                }
            }
        }
#endif
        for (j = 0; j < TSNN_N; j++) {
            src_prev[j] = crossed[j];
            counts[j] = (uint16_t)(counts[j] + crossed[j]);
            n_spikes += crossed[j];
        }
        n_src = n_spikes;
        total += n_spikes;
#if TSNN_EXIT_MARGIN > 0
        if (n_spikes && exit_reached(total))
            break;
#endif
    }
    return total;
}

int tsnn_infer(const uint8_t image[TSNN_IMAGE_BYTES], uint32_t seed, uint32_t sample_id,
               uint16_t *spike_counts, uint8_t *prediction)
{
    const uint32_t skey = fmix32(seed + GOLDEN * sample_id);
    uint32_t sums[TSNN_CLASSES];
    uint32_t i, k, n_nz = 0;
    int64_t s, n;
    for (i = 0; i < TSNN_IMAGE_BYTES; i++)
        if (image[i])
            nz[n_nz++] = (uint16_t)i;
    for (k = 0; k < TSNN_N_RATES; k++)
        if (present(image, n_nz, skey, k) >= min_spikes)
            break;
    for (i = 0; i < TSNN_N; i++)
        spike_counts[i] = counts[i];
    class_sums(sums);
    *prediction = (uint8_t)leader(sums, &s, &n);
    return 0;
}
