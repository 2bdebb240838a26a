// tinysnn CUDA kernels (float64 mode): the NumPy reference's presentation loop on the GPU.
//
// Compiled at run time by CuPy (NVRTC) with  -DNPT=<neurons per thread> -DMAXCH=<input chunks>
// --fmad=false ; compile-checked by the tests with  nvcc --ptx  (the same defines).
// The file is also valid C++ under tests/emu/cuda_emu.h, which runs the kernels on CPU threads
// (one OS thread per CUDA thread) so their logic is tested on machines without a GPU.
//
// Layout. One thread block simulates one sample of one network; neuron j lives in thread
// j % blockDim.x, slot j / blockDim.x (NPT slots per thread, state in registers). The whole
// sample (retries included, all T steps) runs inside one launch:
//   snn_infer  grid (B, K): sample b of network k; weights W[k] and thresholds theta[k] are
//              read-only, so many samples and many networks (quantization points) run at once.
//   snn_train  grid (1, 1): the samples one after the other, weights and theta updated in place.
//
// Exactness. Every float64 operation is the reference's, in the reference's order
// (tinysnn_core/builtin/backend_numpy.py, neurons.py, learning.py): the input current is the
// sum of the spiking pixels' weight rows in ascending pixel order (one thread per neuron sums
// sequentially, as NumPy's axis-0 reduction does); the normalisation sums each column with
// NumPy's pairwise summation; FMA contraction is disabled (--fmad=false). Randomness is the
// counter-based generator of tinysnn_core/counter_rng.py (fmix32), evaluated per pixel.
//
// Per step, three block barriers in inference (input-spike ranks, spike list ready, neuron
// ranks) plus one when learning with a postsynaptic spike.

#ifndef NPT
#define NPT 1
#endif
#ifndef MAXCH
#define MAXCH 4
#endif

#define SNN_FULL_MASK 0xffffffffu

// -- packed float parameters (tinysnn_cupy/backend.py FP_NAMES) --------------------------------
#define FP_E_REST 0
#define FP_E_RESET 1
#define FP_E_THRESH 2
#define FP_E_DECAY 3
#define FP_E_REFRAC 4
#define FP_E_THETA_DECAY 5
#define FP_E_THETA_PLUS 6
#define FP_I_REST 7
#define FP_I_RESET 8
#define FP_I_THRESH 9
#define FP_I_DECAY 10
#define FP_I_REFRAC 11
#define FP_I_THETA_DECAY 12
#define FP_I_THETA_PLUS 13
#define FP_DT 14
#define FP_W_LAT 15
#define FP_W_EXC_INH 16
#define FP_WMIN 17
#define FP_WMAX 18
#define FP_TRACE_DECAY 19
#define FP_NU_PRE 20
#define FP_NU_POST 21
#define FP_X_TAR 22
#define FP_MU 23
#define FP_TARGET 24
#define FP_K_MIN 25
#define FP_K_MAX 26
#define FP_WEIGHT_DECAY 27
#define FP_NORM 28

// -- packed integer parameters (IP_NAMES) ----------------------------------------------------------
#define IP_T 0
#define IP_N 1
#define IP_N_IN 2
#define IP_E_ADAPTIVE 3
#define IP_E_ONE_SPIKE 4
#define IP_I_ADAPTIVE 5
#define IP_I_ONE_SPIKE 6
#define IP_HAS_INH 7
#define IP_RULE 8
#define IP_NEEDS_POST 9
#define IP_MIN_POST 10
#define IP_ADAPT_POT 11
#define IP_NORMALIZE 12
#define IP_MAX_RETRIES 13
#define IP_RETRY_MIN 14

#define RULE_POSTPRE 0
#define RULE_WEIGHT_DEPENDENT 1
#define RULE_TINYSNN 2

// -- per-sample operation counters (OPS_NAMES) ------------------------------------------------------
#define OP_PRESENTATIONS 0
#define OP_INPUT_SPIKES 1
#define OP_EXC_SPIKES 2
#define OP_INH_SPIKES 3
#define OP_LATERAL 4
#define OP_STDP 5
#define OP_ACCUM 6
#define OP_NORM 7
#define N_OPS 8

#include "snn_rng.cuh"      // the counter-based generator

typedef unsigned int snn_u32;

// np.clip(x, lo, hi) for one value (minimum(maximum(x, lo), hi))
__device__ __forceinline__ double snn_clip(double x, double lo, double hi)
{
    if (!(x > lo)) x = lo;
    if (!(x < hi)) x = hi;
    return x;
}

struct SnnParams {
    double e_rest, e_reset, e_thresh, e_decay, e_refrac, e_theta_decay, e_theta_plus;
    double i_rest, i_reset, i_thresh, i_decay, i_refrac, i_theta_decay, i_theta_plus;
    double dt, w_lat, w_exc_inh, wmin, wmax, trace_decay, nu_pre, nu_post, x_tar, mu;
    double target, k_min, k_max, weight_decay, norm;
    int T, N, n_in, rule, min_post, max_retries, retry_min;
    bool e_adaptive, e_one, i_adaptive, i_one, has_inh, needs_post, adapt_pot, normalize;
};

__device__ __forceinline__ void snn_load_params(SnnParams& P, const double* fp, const long long* ip)
{
    P.e_rest = fp[FP_E_REST]; P.e_reset = fp[FP_E_RESET]; P.e_thresh = fp[FP_E_THRESH];
    P.e_decay = fp[FP_E_DECAY]; P.e_refrac = fp[FP_E_REFRAC];
    P.e_theta_decay = fp[FP_E_THETA_DECAY]; P.e_theta_plus = fp[FP_E_THETA_PLUS];
    P.i_rest = fp[FP_I_REST]; P.i_reset = fp[FP_I_RESET]; P.i_thresh = fp[FP_I_THRESH];
    P.i_decay = fp[FP_I_DECAY]; P.i_refrac = fp[FP_I_REFRAC];
    P.i_theta_decay = fp[FP_I_THETA_DECAY]; P.i_theta_plus = fp[FP_I_THETA_PLUS];
    P.dt = fp[FP_DT]; P.w_lat = fp[FP_W_LAT]; P.w_exc_inh = fp[FP_W_EXC_INH];
    P.wmin = fp[FP_WMIN]; P.wmax = fp[FP_WMAX]; P.trace_decay = fp[FP_TRACE_DECAY];
    P.nu_pre = fp[FP_NU_PRE]; P.nu_post = fp[FP_NU_POST]; P.x_tar = fp[FP_X_TAR]; P.mu = fp[FP_MU];
    P.target = fp[FP_TARGET]; P.k_min = fp[FP_K_MIN]; P.k_max = fp[FP_K_MAX];
    P.weight_decay = fp[FP_WEIGHT_DECAY]; P.norm = fp[FP_NORM];
    P.T = (int)ip[IP_T]; P.N = (int)ip[IP_N]; P.n_in = (int)ip[IP_N_IN];
    P.rule = (int)ip[IP_RULE]; P.min_post = (int)ip[IP_MIN_POST];
    P.max_retries = (int)ip[IP_MAX_RETRIES]; P.retry_min = (int)ip[IP_RETRY_MIN];
    P.e_adaptive = ip[IP_E_ADAPTIVE] != 0; P.e_one = ip[IP_E_ONE_SPIKE] != 0;
    P.i_adaptive = ip[IP_I_ADAPTIVE] != 0; P.i_one = ip[IP_I_ONE_SPIKE] != 0;
    P.has_inh = ip[IP_HAS_INH] != 0; P.needs_post = ip[IP_NEEDS_POST] != 0;
    P.adapt_pot = ip[IP_ADAPT_POT] != 0; P.normalize = ip[IP_NORMALIZE] != 0;
}

// One LIF / AdaptiveLIF step of one neuron (tinysnn_core/builtin/neurons.py LIF.step), in the
// reference's order; returns whether the neuron crossed its threshold (before the one-spike pick).
__device__ __forceinline__ bool snn_neuron_step(double& v, double& ref, double& theta, double cur,
                                                bool adaptive, bool learn, double rest,
                                                double reset, double thresh, double decay,
                                                double refrac, double dt, double theta_decay,
                                                double theta_plus)
{
    double x = v - rest;
    x = x * decay;
    x = x + rest;
    if (adaptive && learn) theta = theta * theta_decay;
    x = x + (ref <= 0.0 ? cur : 0.0);
    double r = ref - dt;
    const double th = adaptive ? thresh + theta : thresh;
    const bool crossed = x >= th;
    if (crossed) {
        x = reset;
        r = refrac;
        if (adaptive && learn) theta = theta + theta_plus;
    }
    v = x;
    ref = r;
    return crossed;
}

// Ordered ranks over the block. Element e = c * blockDim.x + threadIdx.x of chunk c has flag
// fa[c]; pa[c] receives its rank among the flagged elements in ascending e; returns their count.
// Exactly one __syncthreads; s_cnt (NCH * 32 ints) is written before it and read after it, so
// the caller must pass another barrier before using the same s_cnt again.
template <int NCH>
__device__ __forceinline__ int snn_block_rank(const bool* fa, int* pa, int* s_cnt)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const snn_u32 lt = (1u << lane) - 1u;
    snn_u32 bal[NCH];
#pragma unroll
    for (int c = 0; c < NCH; ++c) {
        bal[c] = __ballot_sync(SNN_FULL_MASK, fa[c]);
        if (lane == 0) s_cnt[c * 32 + warp] = __popc(bal[c]);
    }
    __syncthreads();
    int base = 0;
#pragma unroll
    for (int c = 0; c < NCH; ++c) {
        int before = 0, tot = 0;
        for (int w = 0; w < nw; ++w) {
            const int n = s_cnt[c * 32 + w];
            tot += n;
            if (w < warp) before += n;
        }
        pa[c] = base + before + __popc(bal[c] & lt);
        base += tot;
    }
    return base;
}

// Two rankings behind one barrier (excitatory and inhibitory crossings of a step).
template <int NCH>
__device__ __forceinline__ void snn_block_rank2(const bool* fa, int* pa, int* sa, int& na,
                                                const bool* fb, int* pb, int* sb, int& nb)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const snn_u32 lt = (1u << lane) - 1u;
    snn_u32 ba[NCH], bb[NCH];
#pragma unroll
    for (int c = 0; c < NCH; ++c) {
        ba[c] = __ballot_sync(SNN_FULL_MASK, fa[c]);
        bb[c] = __ballot_sync(SNN_FULL_MASK, fb[c]);
        if (lane == 0) {
            sa[c * 32 + warp] = __popc(ba[c]);
            sb[c * 32 + warp] = __popc(bb[c]);
        }
    }
    __syncthreads();
    int base_a = 0, base_b = 0;
#pragma unroll
    for (int c = 0; c < NCH; ++c) {
        int before_a = 0, tot_a = 0, before_b = 0, tot_b = 0;
        for (int w = 0; w < nw; ++w) {
            const int x = sa[c * 32 + w], y = sb[c * 32 + w];
            tot_a += x;
            tot_b += y;
            if (w < warp) { before_a += x; before_b += y; }
        }
        pa[c] = base_a + before_a + __popc(ba[c] & lt);
        pb[c] = base_b + before_b + __popc(bb[c] & lt);
        base_a += tot_a;
        base_b += tot_b;
    }
    na = base_a;
    nb = base_b;
}

// NumPy's pairwise summation (pairwise_sum_DOUBLE) of |a[0]|, |a[stride]|, ... (n items).
__device__ double snn_pairwise_abs(const double* a, int n, int stride)
{
    if (n < 8) {
        double res = 0.0;
        for (int i = 0; i < n; ++i) res += fabs(a[(long long)i * stride]);
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int q = 0; q < 8; ++q) r[q] = fabs(a[(long long)q * stride]);
        int i = 8;
        const int stop = n - (n % 8);
        for (; i < stop; i += 8)
            for (int q = 0; q < 8; ++q) r[q] += fabs(a[(long long)(i + q) * stride]);
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += fabs(a[(long long)i * stride]);
        return res;
    }
    int n2 = n / 2;
    n2 -= n2 % 8;
    return snn_pairwise_abs(a, n2, stride) + snn_pairwise_abs(a + (long long)n2 * stride, n - n2,
                                                              stride);
}

// All presentations of one sample (the retry rule) for one network.
//   W [n_in, N], theta [N] (written back when LEARN), img [n_in], skey = sample_key(seed, id),
//   rate_units [max_retries + 1]; acc [N, n_in], g_factor [N], g_colcnt [N]: LEARN work space;
//   counts_out [N] (the last presentation's counts), ops_out [N_OPS].
template <bool LEARN>
__device__ void snn_run_sample(const SnnParams& P, double* W, double* theta,
                               const unsigned char* img, snn_u32 skey, const snn_u32* rate_units,
                               double* acc, double* g_factor, int* g_colcnt, int* counts_out,
                               long long* ops_out, char* smem)
{
    const int tid = threadIdx.x, bd = blockDim.x;
    const int N = P.N, n_in = P.n_in, T = P.T;

    // dynamic shared memory
    double* s_xpre = (double*)smem;                               // [n_in]    LEARN
    int* s_nz = (int*)(smem + (LEARN ? 8LL * n_in : 0));          // [n_in] non-zero pixels
    snn_u32* s_thr = (snn_u32*)(s_nz + n_in);                     // [n_in] their thresholds
    snn_u32* s_mul = s_thr + n_in;                                // [n_in] pixel * INDEX_MUL
    int* s_pre = (int*)(s_mul + n_in);                            // [n_in] spiking pixels
    int* s_pos = s_pre + n_in;                                    // [n_in] pixel -> nz rank LEARN
    int* s_post = s_pos + (LEARN ? n_in : 0);                     // [N] emitted spikes    LEARN
    int* s_col = s_post + (LEARN ? N : 0);                        // [N] columns to update LEARN
    int* s_in = s_col + (LEARN ? N : 0);                          // [MAXCH * 32] rank counts
    int* s_ne = s_in + MAXCH * 32;                                // [NPT * 32]
    int* s_ni = s_ne + NPT * 32;                                  // [NPT * 32]
    int* s_nm = s_ni + NPT * 32;                                  // [NPT * 32]

    const snn_u32 winner_mul = RNG_WINNER_INDEX * RNG_INDEX_MUL;
    long long o_pres = 0, o_in = 0, o_exc = 0, o_inh = 0, o_lat = 0, o_stdp = 0, o_acc = 0,
              o_norm = 0;
    int cnt[NPT];

    for (int retry = 0; retry <= P.max_retries; ++retry) {
        // ---- inputs of the presentation: non-zero pixels in ascending order ------------------
        const snn_u32 ru = rate_units[retry];
        int n_nz;
        {
            bool f[MAXCH];
            int pos[MAXCH];
#pragma unroll
            for (int c = 0; c < MAXCH; ++c) {
                const int k = c * bd + tid;
                f[c] = k < n_in && img[k] != 0;
            }
            n_nz = snn_block_rank<MAXCH>(f, pos, s_in);
#pragma unroll
            for (int c = 0; c < MAXCH; ++c) {
                const int k = c * bd + tid;
                if (f[c]) {
                    s_nz[pos[c]] = k;
                    s_thr[pos[c]] = (snn_u32)img[k] * ru;
                    s_mul[pos[c]] = (snn_u32)k * RNG_INDEX_MUL;
                }
                if (LEARN && k < n_in) {
                    s_pos[k] = f[c] ? pos[c] : -1;
                    s_xpre[k] = 0.0;
                }
            }
        }
        if (LEARN && P.rule == RULE_TINYSNN) {
            for (long long e = tid; e < (long long)N * n_nz; e += bd)
                acc[(e / n_nz) * n_in + e % n_nz] = 0.0;
        }

        // ---- fresh neuron state (init_state); theta persists across samples -------------------
        double v[NPT], ref[NPT], th[NPT], vi[NPT], refi[NPT], thi[NPT], xpost[NPT];
        bool sprev[NPT], eprev[NPT], dirty[NPT];
        int pcnt[NPT];
#pragma unroll
        for (int m = 0; m < NPT; ++m) {
            const int j = m * bd + tid;
            v[m] = P.e_rest;
            ref[m] = 0.0;
            th[m] = (P.e_adaptive && j < N) ? theta[j] : 0.0;
            vi[m] = P.i_rest;
            refi[m] = 0.0;
            thi[m] = 0.0;
            xpost[m] = 0.0;
            sprev[m] = eprev[m] = dirty[m] = false;
            pcnt[m] = 0;
            cnt[m] = 0;
        }
        int n_src = 0, n_eprev = 0, n_exc = 0;
        __syncthreads();   // s_nz / s_thr / s_mul / s_pos / s_xpre / acc ready

        for (int t = 0; t < T; ++t) {
            const snn_u32 sk = rng_step_key(skey, (snn_u32)(retry * T + t));
            const snn_u32 rnd = rng_fmix32(sk + winner_mul);

            // ---- input spikes: one hash per non-zero pixel, ranked in pixel order ------------
            int n_pre;
            {
                bool f[MAXCH];
                int pos[MAXCH];
#pragma unroll
                for (int c = 0; c < MAXCH; ++c) {
                    const int k = c * bd + tid;
                    f[c] = k < n_nz && rng_fmix32(sk + s_mul[k]) < s_thr[k];
                }
                n_pre = snn_block_rank<MAXCH>(f, pos, s_in);          // barrier A
#pragma unroll
                for (int c = 0; c < MAXCH; ++c) {
                    const int k = c * bd + tid;
                    if (f[c]) s_pre[pos[c]] = s_nz[k];
                    if (LEARN && k < n_nz) {                          // x_pre decays, resets
                        const int i = s_nz[k];
                        s_xpre[i] = f[c] ? 1.0 : s_xpre[i] * P.trace_decay;
                    }
                }
            }
            __syncthreads();                                          // barrier B: s_pre ready

            // ---- currents and neuron updates -------------------------------------------------
            bool ce[NPT], ci[NPT];
            int pe[NPT], pi[NPT];
#pragma unroll
            for (int m = 0; m < NPT; ++m) {
                const int j = m * bd + tid;
                ce[m] = ci[m] = false;
                if (j < N) {
                    double cur = 0.0;
                    for (int q = 0; q < n_pre; ++q) cur += W[(long long)s_pre[q] * N + j];
                    if (n_src) cur += P.w_lat * (double)(n_src - (sprev[m] ? 1 : 0));
                    ce[m] = snn_neuron_step(v[m], ref[m], th[m], cur, P.e_adaptive, LEARN,
                                            P.e_rest, P.e_reset, P.e_thresh, P.e_decay,
                                            P.e_refrac, P.dt, P.e_theta_decay, P.e_theta_plus);
                    if (P.has_inh) {
                        const double cur_i = n_eprev ? P.w_exc_inh * (eprev[m] ? 1.0 : 0.0) : 0.0;
                        ci[m] = snn_neuron_step(vi[m], refi[m], thi[m], cur_i, P.i_adaptive,
                                                LEARN, P.i_rest, P.i_reset, P.i_thresh,
                                                P.i_decay, P.i_refrac, P.dt, P.i_theta_decay,
                                                P.i_theta_plus);
                    }
                }
            }
            int nc_e, nc_i;
            snn_block_rank2<NPT>(ce, pe, s_ne, nc_e, ci, pi, s_ni, nc_i);   // barrier C

            // one-spike winner: rank rnd % count among the crossing neurons (inhibitory: rank 0)
            const bool e_pick = P.e_one && nc_e > 1;
            const int e_win = e_pick ? (int)(rnd % (snn_u32)nc_e) : 0;
            const int n_post = e_pick ? 1 : nc_e;
            const bool i_pick = P.i_one && nc_i > 1;
            const int n_si = i_pick ? 1 : nc_i;

            o_in += n_pre;
            o_exc += n_post;
            o_inh += n_si;
            if (n_src) o_lat += (long long)n_src * (N - 1);
            if (P.has_inh) o_lat += n_eprev;

            bool se[NPT];
#pragma unroll
            for (int m = 0; m < NPT; ++m) {
                se[m] = ce[m] && (!e_pick || pe[m] == e_win);
                const bool si = ci[m] && (!i_pick || pi[m] == 0);
                if (P.has_inh) {
                    sprev[m] = si;
                    eprev[m] = se[m];
                } else {
                    sprev[m] = se[m];
                }
                cnt[m] += se[m] ? 1 : 0;
            }
            if (P.has_inh) {
                n_src = n_si;
                n_eprev = n_post;
            } else {
                n_src = n_post;
            }
            n_exc += n_post;

            // ---- learning: traces and the rule's step ----------------------------------------
            if (LEARN) {
#pragma unroll
                for (int m = 0; m < NPT; ++m) {
                    const int j = m * bd + tid;
                    if (P.needs_post) xpost[m] = se[m] ? 1.0 : xpost[m] * P.trace_decay;
                    if (se[m]) s_post[e_pick ? 0 : pe[m]] = j;
                }
                if (P.rule == RULE_TINYSNN) {
#pragma unroll
                    for (int m = 0; m < NPT; ++m) pcnt[m] += se[m] ? 1 : 0;
                    o_acc += (long long)n_post * n_in;
                    if (n_post) {
                        __syncthreads();                              // s_post, s_xpre ready
                        for (int k = tid; k < n_nz; k += bd) {
                            const double x = s_xpre[s_nz[k]];
                            for (int q = 0; q < n_post; ++q) acc[(long long)s_post[q] * n_in + k] += x;
                        }
                    }
                } else {
                    const bool wd = P.rule == RULE_WEIGHT_DEPENDENT;
                    if (n_pre && P.nu_pre != 0.0) {                   // depression: spiking rows
#pragma unroll
                        for (int m = 0; m < NPT; ++m) {
                            const int j = m * bd + tid;
                            if (j < N) {
                                const double xp = xpost[m];
                                for (int q = 0; q < n_pre; ++q) {
                                    const long long a = (long long)s_pre[q] * N + j;
                                    const double w = W[a];
                                    const double nw = wd ? w - P.nu_pre * xp * (w - P.wmin)
                                                         : w - P.nu_pre * xp;
                                    W[a] = snn_clip(nw, P.wmin, P.wmax);
                                }
                                dirty[m] = true;
                            }
                        }
                        o_stdp += (long long)n_pre * N;
                    }
                    if (n_post && P.nu_post != 0.0) {                 // potentiation: post columns
                        __syncthreads();                              // depression, s_post ready
                        for (int i = tid; i < n_in; i += bd) {
                            const double dp = P.nu_post * s_xpre[i];
                            for (int q = 0; q < n_post; ++q) {
                                const long long a = (long long)i * N + s_post[q];
                                const double w = W[a];
                                W[a] = snn_clip(wd ? w + dp * (P.wmax - w) : w + dp, P.wmin, P.wmax);
                            }
                        }
#pragma unroll
                        for (int m = 0; m < NPT; ++m) dirty[m] = dirty[m] || se[m];
                        o_stdp += (long long)n_post * n_in;
                    }
                }
            }
        }
        o_pres += 1;

        // ---- end of the presentation (learning): the rule's end_sample, normalisation ----------
        if (LEARN) {
            __syncthreads();                                          // all weight writes done
            if (P.rule == RULE_TINYSNN) {
                bool fc[NPT];
                int pc[NPT];
#pragma unroll
                for (int m = 0; m < NPT; ++m) {
                    const int j = m * bd + tid;
                    fc[m] = j < N && pcnt[m] > 0 && pcnt[m] >= P.min_post;
                }
                const int n_cols = snn_block_rank<NPT>(fc, pc, s_nm);
#pragma unroll
                for (int m = 0; m < NPT; ++m) {
                    if (fc[m]) {
                        s_col[pc[m]] = m * bd + tid;
                        g_colcnt[pc[m]] = pcnt[m];
                    }
                }
                __syncthreads();
                if (n_cols) {
                    double kf = 1.0;
                    if (P.adapt_pot)
                        kf = snn_clip(P.target / (double)(n_exc > 1 ? n_exc : 1), P.k_min, P.k_max);
                    const double keep = 1.0 - P.weight_decay;
                    for (long long e = tid; e < (long long)n_in * n_cols; e += bd) {
                        const int i = (int)(e / n_cols), c = (int)(e % n_cols);
                        const int j = s_col[c];
                        const int p = s_pos[i];
                        const double a = p >= 0 ? acc[(long long)j * n_in + p] : 0.0;
                        double dw = P.nu_post * (kf * a - (double)g_colcnt[c] * P.x_tar);
                        const long long wa = (long long)i * N + j;
                        double w = W[wa];
                        if (P.mu != 0.0) dw = dw * pow(fmax(P.wmax - w, 0.0), P.mu);
                        w = w + dw;
                        if (P.weight_decay != 0.0) w = w * keep;
                        W[wa] = snn_clip(w, P.wmin, P.wmax);
                    }
#pragma unroll
                    for (int m = 0; m < NPT; ++m) dirty[m] = dirty[m] || fc[m];
                    o_stdp += (long long)n_cols * n_in;
                    __syncthreads();
                }
            }
            if (P.normalize) {
                bool fd[NPT];
                int pd[NPT];
#pragma unroll
                for (int m = 0; m < NPT; ++m) fd[m] = (m * bd + tid) < N && dirty[m];
                const int n_cols = snn_block_rank<NPT>(fd, pd, s_nm);
#pragma unroll
                for (int m = 0; m < NPT; ++m)
                    if (fd[m]) s_col[pd[m]] = m * bd + tid;
                __syncthreads();
                for (int c = tid; c < n_cols; c += bd) {
                    double s = snn_pairwise_abs(W + s_col[c], n_in, N);
                    if (s == 0.0) s = 1.0;
                    g_factor[c] = P.norm / s;
                }
                __syncthreads();
                for (long long e = tid; e < (long long)n_in * n_cols; e += bd) {
                    const int i = (int)(e / n_cols), c = (int)(e % n_cols);
                    const long long wa = (long long)i * N + s_col[c];
                    W[wa] = W[wa] * g_factor[c];
                }
                o_norm += 2LL * n_in * n_cols;
                __syncthreads();
            }
            if (P.e_adaptive) {
#pragma unroll
                for (int m = 0; m < NPT; ++m) {
                    const int j = m * bd + tid;
                    if (j < N) theta[j] = th[m];
                }
            }
        }
        if (n_exc >= P.retry_min) break;
    }

#pragma unroll
    for (int m = 0; m < NPT; ++m) {
        const int j = m * bd + tid;
        if (j < N) counts_out[j] = cnt[m];
    }
    if (tid == 0) {
        ops_out[OP_PRESENTATIONS] = o_pres;
        ops_out[OP_INPUT_SPIKES] = o_in;
        ops_out[OP_EXC_SPIKES] = o_exc;
        ops_out[OP_INH_SPIKES] = o_inh;
        ops_out[OP_LATERAL] = o_lat;
        ops_out[OP_STDP] = o_stdp;
        ops_out[OP_ACCUM] = o_acc;
        ops_out[OP_NORM] = o_norm;
    }
}

// Batched inference: block (b, k) runs sample b through network k.
//   W [K, n_in, N], theta [K, N], images [B, n_in] uint8, skeys [B], counts [K, B, N] int32,
//   ops [K, B, N_OPS].
extern "C" __global__ void snn_infer(const double* __restrict__ W,
                                     const double* __restrict__ theta,
                                     const unsigned char* __restrict__ images,
                                     const snn_u32* __restrict__ skeys,
                                     const snn_u32* __restrict__ rate_units,
                                     const double* __restrict__ fp,
                                     const long long* __restrict__ ip, int B,
                                     int* __restrict__ counts, long long* __restrict__ ops)
{
    extern __shared__ double snn_smem[];
    SnnParams P;
    snn_load_params(P, fp, ip);
    const long long b = blockIdx.x, k = blockIdx.y;
    const long long net_w = (long long)P.n_in * P.N;
    snn_run_sample<false>(P, (double*)(W + k * net_w), (double*)(theta + k * P.N),
                          images + b * P.n_in, skeys[b], rate_units, (double*)0, (double*)0,
                          (int*)0, counts + (k * B + b) * P.N, ops + (k * B + b) * N_OPS,
                          (char*)snn_smem);
}

// Training: one block, the B samples in order; W [n_in, N] and theta [N] updated in place.
//   acc [N, n_in], g_factor [N], g_colcnt [N]: work space; counts [B, N]; ops [B, N_OPS].
extern "C" __global__ void snn_train(double* __restrict__ W, double* __restrict__ theta,
                                     const unsigned char* __restrict__ images,
                                     const snn_u32* __restrict__ skeys,
                                     const snn_u32* __restrict__ rate_units,
                                     const double* __restrict__ fp,
                                     const long long* __restrict__ ip, int B,
                                     double* __restrict__ acc, double* __restrict__ g_factor,
                                     int* __restrict__ g_colcnt, int* __restrict__ counts,
                                     long long* __restrict__ ops)
{
    extern __shared__ double snn_smem[];
    SnnParams P;
    snn_load_params(P, fp, ip);
    for (int b = 0; b < B; ++b) {
        snn_run_sample<true>(P, W, theta, images + (long long)b * P.n_in, skeys[b], rate_units,
                             acc, g_factor, g_colcnt, counts + (long long)b * P.N,
                             ops + (long long)b * N_OPS, (char*)snn_smem);
        __syncthreads();
    }
}
