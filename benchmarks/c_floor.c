/* The C floor of the reduced tinysnn network's training: only the work of
 * configs/tinysnn.toml's training (topology `tinysnn`, rule `tinysnn-stdp`, adaptive LIF with the
 * one-spike rule, the retry rule, column normalisation), on one core, on input spikes that
 * benchmarks/c_floor.py drew with the project's own encoder and wrote to a file. No Python, no
 * I/O inside the timed region. See docs/c-floor.md.
 *
 * It mirrors plugins/tinysnn-numba/tinysnn_numba/kernels.py (train_batch_fused: _present_train,
 * _end_float) operation by operation, in the same order, so that in float64 built without FMA
 * contraction (-ffp-contract=off) its spikes and weights are bit-identical to the numba
 * backend's. -DREAL=float builds the float32 variant (same code, float state and weights).
 *
 * usage: c_floor SPIKEFILE [--repeats R] [--dump PATH]
 *   prints "key value" lines on stdout; a bad file is one line "c_floor: error: ..." on stderr
 *   and exit status 2. Timed: training on the file's spikes (the floor), the row accumulation
 *   alone, and training that draws its input spikes itself with the project's counter-based
 *   generator (tinysnn_core/counter_rng.py), as the numba kernels do; the drawn spikes are
 *   checked against the file's (draw_mismatch_steps).
 *
 * Spike file (little-endian), written by c_floor.py's write_spike_file:
 *   char[8] "TSNNCF2\0"
 *   u32 n_in, N, T, K (samples), R (presentations per sample: max_retries + 1)
 *   i32 one_spike, min_post, adapt_pot, normalize, retry_min
 *   f64 rest, reset, thresh, decay, refrac, theta_decay, theta_plus, dt, w_lat, wmin, wmax,
 *       trace_decay, nu_post, x_tar, target, k_min, k_max, weight_decay, norm
 *   u32 rate_unit[R] (the encoder's integer threshold per unit of intensity, per presentation)
 *   f64 w0[n_in * N] (row-major), theta0[N]
 *   per sample: u32 sample key, u16 n_nz, u16 nz[n_nz] (ascending non-zero pixels),
 *     u8 intensity[n_nz];
 *     per presentation r < R, per step t < T: u32 winner word, u16 n, u16 pixel[n] (ascending,
 *     each one of the sample's nz)
 *   u64 total input spikes of the file, char[8] "TSNNEND\0"
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef REAL
#define REAL double
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

#define N_IP 5
#define N_FP 19

static void fail(const char *fmt, ...)
{
    va_list ap;
    fputs("c_floor: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (!p)
        fail("out of memory (%zu bytes)", n);
    return p;
}

/* -- reading the spike file: a bounds-checked cursor over the whole file in memory ---------- */
typedef struct {
    const unsigned char *p, *end;
    const char *where;
} cursor;

static const unsigned char *take(cursor *c, size_t n)
{
    if ((size_t)(c->end - c->p) < n)
        fail("spike file truncated (in %s)", c->where);
    const unsigned char *q = c->p;
    c->p += n;
    return q;
}
static uint16_t rd_u16(cursor *c)
{
    const unsigned char *q = take(c, 2);
    return (uint16_t)(q[0] | q[1] << 8);
}
static uint32_t rd_u32(cursor *c)
{
    const unsigned char *q = take(c, 4);
    return (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
}
static uint64_t rd_u64(cursor *c)
{
    uint64_t lo = rd_u32(c);
    return lo | (uint64_t)rd_u32(c) << 32;
}
static double rd_f64(cursor *c) { uint64_t u = rd_u64(c); double d; memcpy(&d, &u, 8); return d; }

typedef struct {
    uint32_t n_in, N, T, K, R;
    int one_spike, min_post, adapt_pot, normalize, retry_min;
    REAL rest, reset, thresh, decay, refrac, theta_decay, theta_plus, dt, w_lat, wmin, wmax,
        trace_decay, nu_post, x_tar, target, k_min, k_max, weight_decay, norm;
    double *w0, *theta0;
    uint32_t *rate_unit;  /* [R] */
    uint32_t *skey;       /* [K] the samples' keys (counter_rng.sample_key) */
    int32_t *nz_off;      /* [K + 1] into nz and val */
    uint16_t *nz;
    uint8_t *val;         /* intensities of the non-zero pixels */
    int64_t *step_off;    /* [(K * R * T) + 1] into pix: step (s, r, t) = (s * R + r) * T + t */
    uint16_t *pix;
    uint32_t *winner;     /* [K * R * T] */
    uint64_t file_spikes;
} spikes;

static void load(const char *path, spikes *S)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail("cannot open spike file %s", path);
    if (fseek(f, 0, SEEK_END) != 0)
        fail("cannot read spike file %s", path);
    long size = ftell(f);
    rewind(f);
    if (size < 0)
        fail("cannot read spike file %s", path);
    unsigned char *buf = malloc((size_t)size + 1);
    if (!buf)
        fail("out of memory reading %s", path);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size)
        fail("cannot read spike file %s", path);
    fclose(f);
    cursor c = {buf, buf + size, "header"};
    if (memcmp(take(&c, 8), "TSNNCF2", 8) != 0)
        fail("%s is not a c_floor spike file (bad magic)", path);
    S->n_in = rd_u32(&c);
    S->N = rd_u32(&c);
    S->T = rd_u32(&c);
    S->K = rd_u32(&c);
    S->R = rd_u32(&c);
    if (S->n_in < 1 || S->n_in > 65535 || S->N < 1 || S->N > 1u << 20 || S->T < 1 ||
        S->T > 1u << 20 || S->K > 1u << 24 || S->R < 1 || S->R > 255)
        fail("header out of range (n_in %u, N %u, T %u, K %u, R %u)", S->n_in, S->N, S->T, S->K,
             S->R);
    int32_t ip[N_IP];
    for (int k = 0; k < N_IP; k++)
        ip[k] = (int32_t)rd_u32(&c);
    S->one_spike = ip[0]; S->min_post = ip[1]; S->adapt_pot = ip[2]; S->normalize = ip[3];
    S->retry_min = ip[4];
    double fp[N_FP];
    for (int k = 0; k < N_FP; k++)
        fp[k] = rd_f64(&c);
    S->rest = (REAL)fp[0]; S->reset = (REAL)fp[1]; S->thresh = (REAL)fp[2]; S->decay = (REAL)fp[3];
    S->refrac = (REAL)fp[4]; S->theta_decay = (REAL)fp[5]; S->theta_plus = (REAL)fp[6];
    S->dt = (REAL)fp[7]; S->w_lat = (REAL)fp[8]; S->wmin = (REAL)fp[9]; S->wmax = (REAL)fp[10];
    S->trace_decay = (REAL)fp[11]; S->nu_post = (REAL)fp[12]; S->x_tar = (REAL)fp[13];
    S->target = (REAL)fp[14]; S->k_min = (REAL)fp[15]; S->k_max = (REAL)fp[16];
    S->weight_decay = (REAL)fp[17]; S->norm = (REAL)fp[18];
    S->rate_unit = xmalloc(S->R * sizeof(uint32_t));
    for (uint32_t r = 0; r < S->R; r++)
        S->rate_unit[r] = rd_u32(&c);
    size_t nw = (size_t)S->n_in * S->N;
    c.where = "initial weights";
    if (nw + S->N > (size_t)(c.end - c.p) / 8)
        fail("spike file truncated (%zu initial weights announced)", nw);
    S->w0 = xmalloc(nw * sizeof(double));
    for (size_t k = 0; k < nw; k++)
        S->w0[k] = rd_f64(&c);
    S->theta0 = xmalloc(S->N * sizeof(double));
    for (uint32_t j = 0; j < S->N; j++)
        S->theta0[j] = rd_f64(&c);
    /* the spikes: at most the bytes left, two per index */
    size_t left = (size_t)(c.end - c.p);
    size_t n_steps = (size_t)S->K * S->R * S->T;
    if (n_steps > left / 6)
        fail("spike file truncated (%zu steps announced, %zu bytes left)", n_steps, left);
    S->nz_off = xmalloc((S->K + 1) * sizeof(int32_t));
    S->nz = xmalloc(((size_t)S->K * S->n_in + 1) * sizeof(uint16_t));
    S->val = xmalloc((size_t)S->K * S->n_in + 1);
    S->skey = xmalloc((S->K + 1) * sizeof(uint32_t));
    S->step_off = xmalloc((n_steps + 1) * sizeof(int64_t));
    S->winner = xmalloc((n_steps + 1) * sizeof(uint32_t));
    S->pix = xmalloc((left / 2 + 1) * sizeof(uint16_t));
    int32_t *pos = xmalloc(S->n_in * sizeof(int32_t));
    int64_t n_pix = 0;
    size_t n_nz_all = 0;
    char where[96];
    c.where = where;
    S->nz_off[0] = 0;
    S->step_off[0] = 0;
    for (uint32_t s = 0; s < S->K; s++) {
        snprintf(where, sizeof where, "sample %u", s);
        S->skey[s] = rd_u32(&c);
        uint32_t n_nz = rd_u16(&c);
        if (n_nz > S->n_in)
            fail("sample %u: %u non-zero pixels of %u", s, n_nz, S->n_in);
        for (uint32_t i = 0; i < S->n_in; i++)
            pos[i] = -1;
        for (uint32_t k = 0; k < n_nz; k++) {
            uint16_t i = rd_u16(&c);
            if (i >= S->n_in || (k && i <= S->nz[n_nz_all + k - 1]))
                fail("sample %u: non-zero pixel list not ascending within 0..%u", s, S->n_in - 1);
            S->nz[n_nz_all + k] = i;
            pos[i] = (int32_t)k;
        }
        for (uint32_t k = 0; k < n_nz; k++) {
            uint8_t v = take(&c, 1)[0];
            if (v == 0)
                fail("sample %u: a listed non-zero pixel has intensity 0", s);
            S->val[n_nz_all + k] = v;
        }
        n_nz_all += n_nz;
        S->nz_off[s + 1] = (int32_t)n_nz_all;
        for (uint32_t r = 0; r < S->R; r++)
            for (uint32_t t = 0; t < S->T; t++) {
                snprintf(where, sizeof where, "sample %u presentation %u step %u", s, r, t);
                size_t st = ((size_t)s * S->R + r) * S->T + t;
                S->winner[st] = rd_u32(&c);
                uint32_t n = rd_u16(&c);
                if (n > n_nz)
                    fail("%s: %u input spikes from %u non-zero pixels", where, n, n_nz);
                for (uint32_t q = 0; q < n; q++) {
                    uint16_t i = rd_u16(&c);
                    if (i >= S->n_in || pos[i] < 0 || (q && i <= S->pix[n_pix - 1]))
                        fail("%s: spiking pixel %u is not an ascending non-zero pixel", where, i);
                    S->pix[n_pix++] = i;
                }
                S->step_off[st + 1] = n_pix;
            }
    }
    c.where = "trailer";
    S->file_spikes = rd_u64(&c);
    if (memcmp(take(&c, 8), "TSNNEND", 8) != 0)
        fail("spike file corrupt: bad end marker");
    if (c.p != c.end)
        fail("spike file corrupt: %zu bytes after the end marker", (size_t)(c.end - c.p));
    if (S->file_spikes != (uint64_t)n_pix)
        fail("spike file corrupt: trailer says %llu input spikes, the steps hold %lld",
             (unsigned long long)S->file_spikes, (long long)n_pix);
    free(pos);
    free(buf);
}

/* -- the network ---------------------------------------------------------------------------- */
typedef struct {
    REAL *w, *theta, *cur, *v, *ref, *x_pre, *acc, *sums;
    int32_t *s, *s_prev, *cross, *cnt, *cols, *pos;
    uint16_t *pre;        /* drawn spikes of a step (pixels) */
    uint32_t *thr, *im;   /* per non-zero pixel: spike threshold, index hash (draw mode) */
    uint8_t *fired;
    int64_t exc_spikes, input_spikes, presentations, stdp_updates, norm_ops;
    int32_t *n_pres;      /* [K] presentations each sample ran */
} net;

/* cur[j] = sum of w[rows[q], j], from 0, one row after the other (the reference's order); the
 * first pass starts from 0 instead of a cleared row (the same additions, one pass fewer) */
static void sum_rows(const REAL *restrict w, uint32_t N, const uint16_t *rows, int64_t n,
                     REAL *restrict cur)
{
    int64_t q = n < 4 ? n : 4;
    const REAL *r0 = w + (size_t)(q > 0 ? rows[0] : 0) * N;
    const REAL *r1 = w + (size_t)(q > 1 ? rows[1] : 0) * N;
    const REAL *r2 = w + (size_t)(q > 2 ? rows[2] : 0) * N;
    const REAL *r3 = w + (size_t)(q > 3 ? rows[3] : 0) * N;
    switch (q) {
    case 4:
        for (uint32_t j = 0; j < N; j++)
            cur[j] = ((((REAL)0 + r0[j]) + r1[j]) + r2[j]) + r3[j];
        break;
    case 3:
        for (uint32_t j = 0; j < N; j++)
            cur[j] = (((REAL)0 + r0[j]) + r1[j]) + r2[j];
        break;
    case 2:
        for (uint32_t j = 0; j < N; j++)
            cur[j] = ((REAL)0 + r0[j]) + r1[j];
        break;
    case 1:
        for (uint32_t j = 0; j < N; j++)
            cur[j] = (REAL)0 + r0[j];
        break;
    default:
        for (uint32_t j = 0; j < N; j++)
            cur[j] = 0;
    }
    for (; q + 4 <= n; q += 4) {  /* four rows per pass over cur: a quarter of its traffic */
        r0 = w + (size_t)rows[q] * N;
        r1 = w + (size_t)rows[q + 1] * N;
        r2 = w + (size_t)rows[q + 2] * N;
        r3 = w + (size_t)rows[q + 3] * N;
        for (uint32_t j = 0; j < N; j++)
            cur[j] = (((cur[j] + r0[j]) + r1[j]) + r2[j]) + r3[j];
    }
    r0 = w + (size_t)(q < n ? rows[q] : 0) * N;    /* the last 1-3 rows in one pass too */
    r1 = w + (size_t)(q + 1 < n ? rows[q + 1] : 0) * N;
    r2 = w + (size_t)(q + 2 < n ? rows[q + 2] : 0) * N;
    switch (n - q) {
    case 3:
        for (uint32_t j = 0; j < N; j++)
            cur[j] = ((cur[j] + r0[j]) + r1[j]) + r2[j];
        break;
    case 2:
        for (uint32_t j = 0; j < N; j++)
            cur[j] = (cur[j] + r0[j]) + r1[j];
        break;
    case 1:
        for (uint32_t j = 0; j < N; j++)
            cur[j] += r0[j];
        break;
    }
}

/* tinysnn_core/counter_rng.py: MurmurHash3's fmix32, the step key, the winner draw */
#define MIX1 0x85EBCA6Bu
#define MIX2 0xC2B2AE35u
static inline uint32_t fmix32(uint32_t x)
{
    x ^= x >> 16;
    x *= MIX1;
    x ^= x >> 13;
    x *= MIX2;
    x ^= x >> 16;
    return x;
}
#define STEP_MUL 0x85EBCA77u
#define INDEX_MUL 0xC2B2AE3Du
#define WINNER_INDEX 0xFFFFu

/* the pixels of a presentation that spike at the step with key sk: draw < intensity * unit */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
/* as numba's _draw_steps_x16: 16 pixels at a time hashed, tested and compacted in vector
 * registers (vpcompressd), then narrowed to u16 and stored under a mask: branch-free */
static int64_t draw_step(uint32_t sk, const uint16_t *nz, int32_t n_nz, const uint32_t *im,
                         const uint32_t *thr, uint8_t *fired, uint16_t *pre)
{
    (void)fired;
    const __m512i key = _mm512_set1_epi32((int)sk);
    const __m512i mix1 = _mm512_set1_epi32((int)MIX1);
    const __m512i mix2 = _mm512_set1_epi32((int)MIX2);
    int64_t n = 0;
    for (int32_t k0 = 0; k0 < n_nz; k0 += 16) {
        uint32_t lanes = (uint32_t)(n_nz - k0 < 16 ? n_nz - k0 : 16);
        __mmask16 live = (__mmask16)((1u << lanes) - 1u);
        __m512i x = _mm512_add_epi32(key, _mm512_maskz_loadu_epi32(live, im + k0));
        x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
        x = _mm512_mullo_epi32(x, mix1);
        x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 13));
        x = _mm512_mullo_epi32(x, mix2);
        x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
        __m512i t = _mm512_maskz_loadu_epi32(live, thr + k0);
        __mmask16 f = _mm512_mask_cmplt_epu32_mask(live, x, t);
        __m512i idx = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(live, nz + k0));
        uint32_t c = (uint32_t)__builtin_popcount((unsigned)f);
        _mm256_mask_storeu_epi16(pre + n, (__mmask16)((1u << c) - 1u),
                                 _mm512_cvtepi32_epi16(_mm512_maskz_compress_epi32(f, idx)));
        n += c;
    }
    return n;
}
#else
static int64_t draw_step(uint32_t sk, const uint16_t *nz, int32_t n_nz, const uint32_t *im,
                         const uint32_t *thr, uint8_t *fired, uint16_t *pre)
{
    for (int32_t k = 0; k < n_nz; k++)  /* branch-free: vectorised */
        fired[k] = fmix32(sk + im[k]) < thr[k];
    int64_t n = 0;
    for (int32_t k = 0; k < n_nz; k++) {
        pre[n] = nz[k];
        n += fired[k];
    }
    return n;
}
#endif

static inline REAL clip(REAL x, REAL lo, REAL hi)
{
    if (!(x > lo))
        x = lo;
    if (!(x < hi))
        x = hi;
    return x;
}

/* tinysnn-stdp's end-of-sample update of one weight (row i, column col: its trace sum a,
 * its neuron's spike count cnt); the stored weight */
typedef struct {
    REAL kf, nu, x_tar, keep, wmin, wmax;
    int decay;
} update;

static inline REAL updated(const update *u, REAL wv, REAL a, REAL cnt)
{
    REAL x = wv + u->nu * (u->kf * a - cnt * u->x_tar);
    if (u->decay)
        x *= u->keep;
    return clip(x, u->wmin, u->wmax);
}

static inline REAL elem(REAL *wp, const update *u, const REAL *acc, const int32_t *pos,
                        uint32_t i, REAL cnt)
{
    if (u)
        *wp = updated(u, *wp, pos[i] >= 0 ? acc[pos[i]] : (REAL)0, cnt);
    return *wp < 0 ? -*wp : *wp;
}

/* NumPy's pairwise sum (pairwise_sum_DOUBLE) of |w[start .. start+n, col]|; with u, each
 * weight first gets the update (its trace sum acc[pos[i]], or 0 for a zero pixel) and is
 * stored: the update and the normalisation's sum in one pass over the column */
static REAL pairwise_abs(REAL *w, uint32_t N, uint32_t col, uint32_t start, uint32_t n,
                         const update *u, const REAL *acc, const int32_t *pos, REAL cnt)
{
#define A(i) elem(w + (size_t)(i) * N + col, u, acc, pos, (i), cnt)
    if (n < 8) {
        REAL res = 0;
        for (uint32_t i = start; i < start + n; i++)
            res += A(i);
        return res;
    }
    if (n <= 128) {
        REAL r[8];
        for (int u8 = 0; u8 < 8; u8++)
            r[u8] = A(start + u8);
        uint32_t i = 8, stop = n - n % 8;
        for (; i < stop; i += 8)
            for (int u8 = 0; u8 < 8; u8++)
                r[u8] += A(start + i + u8);
        REAL res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += A(start + i);
        return res;
    }
    uint32_t m2 = n / 2;
    m2 -= m2 % 8;
    return pairwise_abs(w, N, col, start, m2, u, acc, pos, cnt) +
           pairwise_abs(w, N, col, start + m2, n - m2, u, acc, pos, cnt);
#undef A
}

/* one presentation's time loop (_steps_float of the tinysnn network while learning); returns
 * its excitatory spikes */
static int64_t present(const spikes *S, net *X, uint32_t s, uint32_t r, int draw)
{
    const uint32_t N = S->N, n_in = S->n_in, T = S->T;
    const uint16_t *nz = S->nz + S->nz_off[s];
    const int32_t n_nz = S->nz_off[s + 1] - S->nz_off[s];
    REAL *restrict v = X->v, *restrict ref = X->ref, *restrict cur = X->cur;
    REAL *restrict theta = X->theta, *restrict x_pre = X->x_pre;
    int32_t *restrict sp = X->s, *restrict sprev = X->s_prev;
    const REAL rest = S->rest, reset = S->reset, thresh = S->thresh, decay = S->decay,
               refrac = S->refrac, dt = S->dt, tdec = S->theta_decay, tplus = S->theta_plus,
               w_lat = S->w_lat, trace_decay = S->trace_decay;
    for (uint32_t j = 0; j < N; j++) {
        v[j] = rest;
        ref[j] = 0;
        sprev[j] = 0;
        X->cnt[j] = 0;
    }
    /* the traces of the non-zero pixels only, in their compact order (zero pixels never spike:
     * their traces stay 0); pos maps a pixel to its place */
    for (uint32_t i = 0; i < n_in; i++)
        X->pos[i] = -1;
    for (int32_t k = 0; k < n_nz; k++) {
        X->pos[nz[k]] = k;
        x_pre[k] = 0;
    }
    const uint8_t *val = S->val + S->nz_off[s];
    if (draw)      /* the encoder's thresholds (< 2**32, c_floor.py checks) and index hashes */
        for (int32_t k = 0; k < n_nz; k++) {
            X->thr[k] = (uint32_t)val[k] * S->rate_unit[r];
            X->im[k] = (uint32_t)nz[k] * INDEX_MUL;
        }
    int64_t n_exc = 0, n_src = 0;
    for (uint32_t t = 0; t < T; t++) {
        size_t st = ((size_t)s * S->R + r) * T + t;
        const uint16_t *pre;
        int64_t n_pre;
        uint32_t winner;
        if (draw) {
            uint32_t sk = fmix32(S->skey[s] ^ ((r * T + t) * STEP_MUL));
            n_pre = draw_step(sk, nz, n_nz, X->im, X->thr, X->fired, X->pre);
            pre = X->pre;
            winner = fmix32(sk + WINNER_INDEX * INDEX_MUL);
        } else {
            pre = S->pix + S->step_off[st];
            n_pre = S->step_off[st + 1] - S->step_off[st];
            winner = S->winner[st];
        }
        X->input_spikes += n_pre;
        sum_rows(X->w, N, pre, n_pre, cur);
        if (n_src) {
            const int32_t n_src32 = (int32_t)n_src;  /* at most N: int32 converts in vectors */
            for (uint32_t j = 0; j < N; j++)
                cur[j] += w_lat * (REAL)(n_src32 - sprev[j]);
        }
        /* adaptive LIF while learning: theta decays, then leak, input unless refractory,
         * threshold thresh + theta, reset; selects only, so that the loop vectorises */
        int32_t nc = 0;
        for (uint32_t j = 0; j < N; j++) {
            REAL th = theta[j] * tdec;
            theta[j] = th;
            REAL x = ((v[j] - rest) * decay) + rest;
            x = x + (ref[j] <= 0 ? cur[j] : (REAL)0);
            int c = x >= thresh + th;
            v[j] = c ? reset : x;
            ref[j] = c ? refrac : ref[j] - dt;
            sp[j] = c;
            nc += c;
        }
        int32_t n_post = 0;
        if (nc) {
            int32_t q = 0;
            for (uint32_t j = 0; j < N; j++)
                if (sp[j]) {
                    X->cross[q++] = (int32_t)j;
                    theta[j] = theta[j] + tplus;   /* every crossing neuron adapts */
                }
            n_post = nc;
            if (S->one_spike && nc > 1) {
                int32_t win = X->cross[(int64_t)winner % nc];
                for (q = 0; q < nc; q++)
                    sp[X->cross[q]] = 0;
                sp[win] = 1;
                X->cross[0] = win;
                n_post = 1;
            }
        }
        int32_t *tmp = sprev;    /* this step's spikes become the previous ones */
        sprev = sp;
        sp = tmp;
        n_src = n_post;
        n_exc += n_post;
        /* traces of the sample's non-zero pixels, then tinysnn-stdp's trace sums */
        for (int32_t k = 0; k < n_nz; k++)
            x_pre[k] *= trace_decay;
        for (int64_t q = 0; q < n_pre; q++)
            x_pre[X->pos[pre[q]]] = 1;
        for (int32_t q = 0; q < n_post; q++) {
            int32_t j = X->cross[q];
            REAL *restrict a = X->acc + (size_t)j * n_in;
            if (X->cnt[j] == 0)
                for (int32_t k = 0; k < n_nz; k++)
                    a[k] = x_pre[k];
            else
                for (int32_t k = 0; k < n_nz; k++)
                    a[k] += x_pre[k];
            X->cnt[j] += 1;
        }
    }
    X->s = sp;
    X->s_prev = sprev;
    X->exc_spikes += n_exc;
    X->presentations += 1;
    return n_exc;
}

/* tinysnn-stdp's end_sample on the neurons that passed the filter, then their normalisation
 * (_end_float) */
static void end_sample(const spikes *S, net *X, int64_t n_exc)
{
    const uint32_t N = S->N, n_in = S->n_in;
    REAL *restrict w = X->w;
    int32_t n_cols = 0;
    for (uint32_t j = 0; j < N; j++)
        if (X->cnt[j] > 0 && X->cnt[j] >= S->min_post)
            X->cols[n_cols++] = (int32_t)j;
    if (!n_cols)
        return;
    REAL kf = 1;
    if (S->adapt_pot)
        kf = clip(S->target / (REAL)(n_exc > 1 ? n_exc : 1), S->k_min, S->k_max);
    const update u = {kf, S->nu_post, S->x_tar, 1 - S->weight_decay, S->wmin, S->wmax,
                      S->weight_decay != 0};
    X->stdp_updates += (int64_t)n_cols * n_in;
    if (!S->normalize) {
        for (uint32_t i = 0; i < n_in; i++) {
            int32_t p = X->pos[i];
            REAL *restrict row = w + (size_t)i * N;
            for (int32_t c = 0; c < n_cols; c++) {
                int32_t j = X->cols[c];
                row[j] = updated(&u, row[j], p >= 0 ? X->acc[(size_t)j * n_in + p] : (REAL)0,
                                 (REAL)X->cnt[j]);
            }
        }
        return;
    }
    /* per column: the update and the sum in one pass, then the products row by row */
    for (int32_t c = 0; c < n_cols; c++) {
        int32_t j = X->cols[c];
        REAL sum = pairwise_abs(w, N, (uint32_t)j, 0, n_in, &u, X->acc + (size_t)j * n_in,
                                X->pos, (REAL)X->cnt[j]);
        if (sum == 0)
            sum = 1;
        X->sums[c] = S->norm / sum;
    }
    for (uint32_t i = 0; i < n_in; i++) {
        REAL *restrict row = w + (size_t)i * N;
        for (int32_t c = 0; c < n_cols; c++)
            row[X->cols[c]] *= X->sums[c];
    }
    X->norm_ops += 2 * (int64_t)n_in * n_cols;
}

static void train(const spikes *S, net *X, int draw)
{
    X->exc_spikes = X->input_spikes = X->presentations = X->stdp_updates = X->norm_ops = 0;
    for (uint32_t s = 0; s < S->K; s++) {
        uint32_t r = 0;
        for (; r < S->R; r++) {
            int64_t n_exc = present(S, X, s, r, draw);
            end_sample(S, X, n_exc);
            if (n_exc >= S->retry_min)
                break;
        }
        X->n_pres[s] = (int32_t)(r < S->R ? r + 1 : S->R);
    }
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of this thread: below the wall time when the shared machine preempted it */
static double cpu_now(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

static void reset_weights(const spikes *S, net *X)
{
    size_t nw = (size_t)S->n_in * S->N;
    for (size_t k = 0; k < nw; k++)
        X->w[k] = (REAL)S->w0[k];
    for (uint32_t j = 0; j < S->N; j++)
        X->theta[j] = (REAL)S->theta0[j];
}

/* the steps whose drawn spikes or winner word differ from the file's (0: the generator here
 * is the project's) */
static int64_t verify_draws(const spikes *S, net *X)
{
    int64_t bad = 0;
    for (uint32_t s = 0; s < S->K; s++) {
        const uint16_t *nz = S->nz + S->nz_off[s];
        const uint8_t *val = S->val + S->nz_off[s];
        const int32_t n_nz = S->nz_off[s + 1] - S->nz_off[s];
        for (uint32_t r = 0; r < S->R; r++) {
            for (int32_t k = 0; k < n_nz; k++) {
                X->thr[k] = (uint32_t)val[k] * S->rate_unit[r];
                X->im[k] = (uint32_t)nz[k] * INDEX_MUL;
            }
            for (uint32_t t = 0; t < S->T; t++) {
                size_t st = ((size_t)s * S->R + r) * S->T + t;
                uint32_t sk = fmix32(S->skey[s] ^ ((r * S->T + t) * STEP_MUL));
                int64_t n = draw_step(sk, nz, n_nz, X->im, X->thr, X->fired, X->pre);
                int64_t m = S->step_off[st + 1] - S->step_off[st];
                bad += n != m || memcmp(X->pre, S->pix + S->step_off[st], 2 * (size_t)n) != 0 ||
                       fmix32(sk + WINNER_INDEX * INDEX_MUL) != S->winner[st];
            }
        }
    }
    return bad;
}

/* only the input row accumulation of the presentations training ran; returns a checksum so
 * that the compiler keeps the work */
static double rows_only(const spikes *S, net *X)
{
    double chk = 0;
    for (uint32_t s = 0; s < S->K; s++)
        for (int32_t r = 0; r < X->n_pres[s]; r++)
            for (uint32_t t = 0; t < S->T; t++) {
                size_t st = ((size_t)s * S->R + (uint32_t)r) * S->T + t;
                int64_t n = S->step_off[st + 1] - S->step_off[st];
                sum_rows(X->w, S->N, S->pix + S->step_off[st], n, X->cur);
                chk += (double)X->cur[t % S->N];
            }
    return chk;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *dump = NULL;
    int repeats = 3;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--repeats") && a + 1 < argc)
            repeats = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--dump") && a + 1 < argc)
            dump = argv[++a];
        else if (argv[a][0] != '-' && !path)
            path = argv[a];
        else
            fail("usage: c_floor SPIKEFILE [--repeats R] [--dump PATH]");
    }
    if (!path || repeats < 1)
        fail("usage: c_floor SPIKEFILE [--repeats R] [--dump PATH]");
    spikes S;
    load(path, &S);
    const uint32_t N = S.N, n_in = S.n_in;
    net X;
    memset(&X, 0, sizeof X);
    X.w = xmalloc((size_t)n_in * N * sizeof(REAL));
    X.theta = xmalloc(N * sizeof(REAL));
    X.cur = xmalloc(N * sizeof(REAL));
    X.v = xmalloc(N * sizeof(REAL));
    X.ref = xmalloc(N * sizeof(REAL));
    X.x_pre = xmalloc(n_in * sizeof(REAL));
    X.acc = xmalloc((size_t)N * n_in * sizeof(REAL));
    X.sums = xmalloc(N * sizeof(REAL));
    X.s = xmalloc(N * sizeof(int32_t));
    X.s_prev = xmalloc(N * sizeof(int32_t));
    X.cross = xmalloc(N * sizeof(int32_t));
    X.cnt = xmalloc(N * sizeof(int32_t));
    X.cols = xmalloc(N * sizeof(int32_t));
    X.pos = xmalloc(n_in * sizeof(int32_t));
    X.n_pres = xmalloc((S.K + 1) * sizeof(int32_t));
    X.pre = xmalloc((n_in + 1) * sizeof(uint16_t));
    X.thr = xmalloc((n_in + 1) * sizeof(uint32_t));
    X.im = xmalloc((n_in + 1) * sizeof(uint32_t));
    X.fired = xmalloc(n_in + 1);

    double best = 1e300, best_rows = 1e300, chk = 0, *cpu = xmalloc(repeats * sizeof(double));
    int64_t first[5] = {0};
    printf("dtype %s\n", sizeof(REAL) == 8 ? "float64" : "float32");
    printf("real %s\n", STR(REAL));
    printf("train_s");
    for (int k = 0; k < repeats; k++) {
        reset_weights(&S, &X);
        double t0 = now(), c0 = cpu_now();
        train(&S, &X, 0);
        double dt = now() - t0;
        cpu[k] = cpu_now() - c0;
        printf(" %.9f", dt);
        best = dt < best ? dt : best;
        int64_t got[5] = {X.exc_spikes, X.input_spikes, X.presentations, X.stdp_updates,
                          X.norm_ops};
        if (k == 0)
            memcpy(first, got, sizeof got);
        else if (memcmp(first, got, sizeof got) != 0)
            fail("repeat %d did different work than the first (not deterministic)", k);
    }
    printf("\ntrain_cpu_s");
    for (int k = 0; k < repeats; k++)
        printf(" %.9f", cpu[k]);
    printf("\n");
    if (dump) {   /* outside the timed region: the trained weights, then theta, as REAL */
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(X.w, sizeof(REAL), (size_t)n_in * N, f) != (size_t)n_in * N ||
            fwrite(X.theta, sizeof(REAL), N, f) != N || fclose(f) != 0)
            fail("cannot write %s", dump);
    }
    printf("rows_s");
    for (int k = 0; k < repeats; k++) {
        double t0 = now();
        chk += rows_only(&S, &X);
        double dt = now() - t0;
        printf(" %.9f", dt);
        best_rows = dt < best_rows ? dt : best_rows;
    }
    printf("\n");
    /* the same training drawing its own input spikes: the same work as the numba kernels,
     * whose time includes the draws (it must do exactly what the file-fed runs did) */
    double best_draw = 1e300;
    printf("train_draw_s");
    for (int k = 0; k < repeats; k++) {
        reset_weights(&S, &X);
        double t0 = now();
        train(&S, &X, 1);
        double dt = now() - t0;
        printf(" %.9f", dt);
        best_draw = dt < best_draw ? dt : best_draw;
        int64_t got[5] = {X.exc_spikes, X.input_spikes, X.presentations, X.stdp_updates,
                          X.norm_ops};
        if (memcmp(first, got, sizeof got) != 0)
            fail("training on drawn spikes did different work than on the file's (the file's "
                 "spikes are not the generator's)");
    }
    printf("\ndraw_mismatch_steps %lld\n", (long long)verify_draws(&S, &X));
    double wsum = 0, tsum = 0;
    for (size_t k = 0; k < (size_t)n_in * N; k++)
        wsum += (double)X.w[k];
    for (uint32_t j = 0; j < N; j++)
        tsum += (double)X.theta[j];
    printf("n_in %u\nn_neurons %u\ntime_steps %u\nsamples %u\npresentations_max %u\n", n_in, N,
           S.T, S.K, S.R);
    printf("file_input_spikes %llu\n", (unsigned long long)S.file_spikes);
    printf("input_spikes %lld\nexc_spikes %lld\npresentations %lld\nstdp_updates %lld\n"
           "norm_ops %lld\n", (long long)X.input_spikes, (long long)X.exc_spikes,
           (long long)X.presentations, (long long)X.stdp_updates, (long long)X.norm_ops);
    printf("sample_presentations");
    for (uint32_t s = 0; s < S.K; s++)
        printf(" %d", X.n_pres[s]);
    printf("\n");
    printf("train_us_per_sample %.3f\n", S.K ? 1e6 * best / S.K : 0.0);
    printf("rows_us_per_sample %.3f\n", S.K ? 1e6 * best_rows / S.K : 0.0);
    printf("train_draw_us_per_sample %.3f\n", S.K ? 1e6 * best_draw / S.K : 0.0);
    printf("weight_sum %.17g\ntheta_sum %.17g\nrows_checksum %.17g\n", wsum, tsum, chk);
    return 0;
}
