// tinysnn CUDA kernel, integer mode: docs/fixed-point.md on the GPU, bit-exact with
// tinysnn_core/intsim.py (infer: spike counts and the all-activity prediction).
//
// Compiled at run time by CuPy (NVRTC) with
//   -DNPT=<neurons per thread> -DMAXCH=<input chunks> -DWT=<weight code type> -DAT=<accumulator>
// WT is the narrowest type that holds every weight code (si_u8, short, si_u16, int, si_i64: the
// typedefs below) and AT is int when no column's sum of |codes| reaches 2**31 (then no partial
// sum of any subset of a column's rows can leave int32), else si_i64; the host
// (tinysnn_cupy/backend.py, int_storage) decides both. Also valid C++ under tests/emu/cuda_emu.h.
//
// Layout. snn_int_infer, grid (B, K): block (b, k) runs sample b through model k, all
// presentations (retries) and all T steps in one launch, then classifies. Neuron j lives in
// thread j / NPT, slot j % NPT (contiguous: a thread loads its NPT weight codes of a row with
// one vector load of NPT * sizeof(WT) bytes; rows are padded to Np = a multiple of NPT columns).
// State (u, refractory counters of both layers, previous spikes, counts) stays in registers.
//
// Two block barriers per step: (1) ranks of the step's input spikes together with the ranks
// of the previous step's threshold crossings (its one-spike winner is resolved after this
// barrier, before its spikes are needed by the next neuron update), (2) the input-spike list
// is ready. Integer arithmetic follows intsim line by line:
//   acc = sum of W[i][j] (ascending i; exact in AT), cur = align(acc, fw, fv) in 64 bits,
//   cur += LAT * (n_src - src_prev[j]) if n_src, u = (u * D + bias) >> FD (64 bits),
//   u += cur unless refractory, saturate, ref -= 1, cross/reset, one-spike rank rnd % count.
//
// Early exit (IM_EXIT_MARGIN > 0, docs/fixed-point.md section 6): the emitted spikes of step t
// add to the presentation's class sums in shared memory (s_pcls, atomics, only in steps with a
// spike) right after barrier 1 of step t + 1; after barrier 2 every thread reads the same sums
// and takes the same decision (intsim.exit_reached), so the block leaves the loop together,
// with no extra barrier. The next writes come after the next barrier 1.

typedef unsigned char si_u8;
typedef unsigned short si_u16;
typedef long long si_i64;

#ifndef NPT
#define NPT 4
#endif
#ifndef MAXCH
#define MAXCH 7
#endif
#ifndef WT
#define WT short
#endif
#ifndef AT
#define AT int
#endif

#define SI_FULL_MASK 0xffffffffu
#define SI_MAX_CLASSES 64

// -- per-model integer parameters (tinysnn_cupy/backend.py INT_MP_NAMES) --------------------------
#define IM_T 0
#define IM_N_RATES 1
#define IM_RETRY_MIN 2
#define IM_HAS_INH 3
#define IM_SHIFT 4
#define IM_LATERAL 5
#define IM_EXC_TO_INH 6
#define IM_N_CLASSES 7
#define IM_E_U_MIN 8
#define IM_E_U_MAX 9
#define IM_E_DECAY 10
#define IM_E_DECAY_FRAC 11
#define IM_E_BIAS 12
#define IM_E_RESET 13
#define IM_E_REFRAC 14
#define IM_E_ONE_SPIKE 15
#define IM_I_U_MIN 16
#define IM_I_U_MAX 17
#define IM_I_DECAY 18
#define IM_I_DECAY_FRAC 19
#define IM_I_BIAS 20
#define IM_I_RESET 21
#define IM_I_REFRAC 22
#define IM_I_ONE_SPIKE 23
#define IM_EXIT_MARGIN 24
#define N_IM 25

// -- per-sample operation counts (ops[k, b, *], intsim.INFER_OPS) --------------------------------
#define IO_PRESENTATIONS 0
#define IO_STEPS 1
#define IO_DRAWS 2
#define IO_INPUT_SPIKES 3
#define IO_EXC_SPIKES 4
#define IO_EXIT_EARLY 5
#define N_IO 6

#include "snn_rng.cuh"      // the counter-based generator

typedef unsigned int si_u32;

// -- vector loads of a thread's NPT codes --------------------------------------------------------
struct alignas(16) si_v16 { unsigned int a, b, c, d; };
struct alignas(8) si_v8 { unsigned int a, b; };
template <int BYTES> struct si_unit { typedef unsigned char type; };
template <> struct si_unit<2> { typedef unsigned short type; };
template <> struct si_unit<4> { typedef unsigned int type; };
template <> struct si_unit<8> { typedef si_v8 type; };
template <> struct si_unit<16> { typedef si_v16 type; };

#define SI_VBYTES ((int)sizeof(WT) * NPT)
#define SI_UBYTES (SI_VBYTES % 16 == 0 ? 16 : SI_VBYTES % 8 == 0 ? 8 : SI_VBYTES % 4 == 0 ? 4 \
                   : SI_VBYTES % 2 == 0 ? 2 : 1)
typedef si_unit<SI_UBYTES>::type si_load_t;
#define SI_NUNITS (SI_VBYTES / SI_UBYTES)

union si_codes {
    si_load_t u[SI_NUNITS];
    WT w[NPT];
};

struct SiLayer {
    long long u_min, u_max, decay, bias, reset;
    int decay_frac, refrac;
    bool one;
};

__device__ __forceinline__ void si_load_layer(SiLayer& L, const long long* mp, int base)
{
    L.u_min = mp[base + 0];
    L.u_max = mp[base + 1];
    L.decay = mp[base + 2];
    L.decay_frac = (int)mp[base + 3];
    L.bias = mp[base + 4];
    L.reset = mp[base + 5];
    L.refrac = (int)mp[base + 6];
    L.one = mp[base + 7] != 0;
}

// intsim.exit_reached after its spike-total test, on the class sums pcls[0 .. n_classes - 1]
// (cs: class sizes; a class without neurons counts as S = 0, n = 1): the leader a of section 7
// leads every other class b by S_a * n_b - S_b * n_a >= margin * n_b.
__device__ __forceinline__ bool si_exit(const int* pcls, const long long* cs, int n_classes,
                                        long long margin)
{
    int a = 0;
    long long s_a = 0, n_a = 1;
    for (int c = 0; c < n_classes; ++c) {
        const long long s_c = pcls[c], n_c = cs[c] ? cs[c] : 1;
        if (s_c * n_a > s_a * n_c) {
            a = c;
            s_a = s_c;
            n_a = n_c;
        }
    }
    for (int c = 0; c < n_classes; ++c) {
        const long long n_c = cs[c] ? cs[c] : 1;
        if (c != a && s_a * n_c - (long long)pcls[c] * n_a < margin * n_c) return false;
    }
    return true;
}

// One neuron of one population (intsim._layer_step without the one-spike pick).
__device__ __forceinline__ bool si_step(long long& u, int& ref, long long cur, long long th,
                                        const SiLayer& L)
{
    long long x = (u * L.decay + L.bias) >> L.decay_frac;
    if (ref <= 0) x += cur;
    if (x < L.u_min) x = L.u_min;
    if (x > L.u_max) x = L.u_max;
    int r = ref - 1;
    const bool crossed = x >= th;
    if (crossed) {
        x = L.reset;
        r = L.refrac;
    }
    u = x;
    ref = r;
    return crossed;
}

// Warp-level part of a rank over thread-major elements (j = tid * NPT + m): per slot ballots.
// Returns this thread's count of flags in lower lanes; *wtot the warp's total.
__device__ __forceinline__ int si_warp_rank_tm(const bool* f, int* wtot)
{
    const int lane = threadIdx.x & 31;
    const si_u32 lt = (1u << lane) - 1u;
    int below = 0, tot = 0;
#pragma unroll
    for (int m = 0; m < NPT; ++m) {
        const si_u32 b = __ballot_sync(SI_FULL_MASK, f[m]);
        below += __popc(b & lt);
        tot += __popc(b);
    }
    *wtot = tot;
    return below;
}

// Ranks behind ONE barrier: input pixels (chunk-major, e = c * blockDim + tid, MAXCH chunks:
// fin/pin/nin) and the excitatory and inhibitory crossings (thread-major, NPT slots: fe/pe/ne,
// fi/pi/ni). s_in [MAXCH * 32], s_e [32], s_i [32] are written before the barrier, read after.
__device__ __forceinline__ void si_rank3(const bool* fin, int* pin, int& nin, const bool* fe,
                                         int* pe, int& ne, const bool* fi, int* pi, int& ni,
                                         int* s_in, int* s_e, int* s_i)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const si_u32 lt = (1u << lane) - 1u;
    si_u32 bal[MAXCH];
#pragma unroll
    for (int c = 0; c < MAXCH; ++c) {
        bal[c] = __ballot_sync(SI_FULL_MASK, fin[c]);
        if (lane == 0) s_in[c * 32 + warp] = __popc(bal[c]);
    }
    int te, ti;
    const int be = si_warp_rank_tm(fe, &te);
    const int bi = si_warp_rank_tm(fi, &ti);
    if (lane == 0) {
        s_e[warp] = te;
        s_i[warp] = ti;
    }
    __syncthreads();
    int base = 0;
#pragma unroll
    for (int c = 0; c < MAXCH; ++c) {
        int before = 0, tot = 0;
        for (int w = 0; w < nw; ++w) {
            const int n = s_in[c * 32 + w];
            tot += n;
            if (w < warp) before += n;
        }
        pin[c] = base + before + __popc(bal[c] & lt);
        base += tot;
    }
    nin = base;
    int before_e = 0, tot_e = 0, before_i = 0, tot_i = 0;
    for (int w = 0; w < nw; ++w) {
        const int x = s_e[w], y = s_i[w];
        tot_e += x;
        tot_i += y;
        if (w < warp) { before_e += x; before_i += y; }
    }
    int re = before_e + be, ri = before_i + bi;
#pragma unroll
    for (int m = 0; m < NPT; ++m) {
        pe[m] = re;
        pi[m] = ri;
        re += fe[m] ? 1 : 0;
        ri += fi[m] ? 1 : 0;
    }
    ne = tot_e;
    ni = tot_i;
}

// Integer inference: block (b, k) = sample b0 + b through model k.
//   W [K, n_in, Np] codes, TH [K, 2, Np] (exc, inh thresholds), ASSIGN [K, Np] (-1: none),
//   CSIZE [K, SI_MAX_CLASSES] neurons per class, MP [K, N_IM], RATES [K, R] (uint32),
//   images [*, n_in] uint8, skeys [*]; counts [K, B, N] int32, preds [K, B] int64,
//   ops [K, B, N_IO] int64 (what each sample did, intsim.INFER_OPS). ASSIGN holds -1 for a
//   neuron without a class, n_classes for one assigned beyond the classes (it counts towards
//   the early-exit spike total, as in intsim, but not in any class).
extern "C" __global__ void snn_int_infer(const WT* __restrict__ W, const long long* __restrict__ TH,
                                         const int* __restrict__ ASSIGN,
                                         const long long* __restrict__ CSIZE,
                                         const long long* __restrict__ MP,
                                         const si_u32* __restrict__ RATES, int R,
                                         const unsigned char* __restrict__ images,
                                         const si_u32* __restrict__ skeys, int b0, int B, int n_in,
                                         int N, int Np, int* __restrict__ counts,
                                         long long* __restrict__ preds,
                                         long long* __restrict__ ops)
{
    extern __shared__ int si_smem[];
    const int tid = threadIdx.x, bd = blockDim.x;
    const long long b = blockIdx.x, k = blockIdx.y;
    const long long* mp = MP + k * N_IM;
    const int T = (int)mp[IM_T], n_rates = (int)mp[IM_N_RATES];
    const long long retry_min = mp[IM_RETRY_MIN];
    const bool has_inh = mp[IM_HAS_INH] != 0;
    const int shift = (int)mp[IM_SHIFT];
    const long long lat = mp[IM_LATERAL], ei = mp[IM_EXC_TO_INH];
    const int n_classes = (int)mp[IM_N_CLASSES];
    const long long margin = mp[IM_EXIT_MARGIN];
    const bool exit_on = margin > 0;
    const long long* csize = CSIZE + k * SI_MAX_CLASSES;
    SiLayer LE, LI;
    si_load_layer(LE, mp, IM_E_U_MIN);
    si_load_layer(LI, mp, IM_I_U_MIN);

    const WT* Wk = W + k * (long long)n_in * Np;
    const unsigned char* img = images + (b0 + b) * (long long)n_in;
    const si_u32 skey = skeys[b0 + b];

    int* s_nz = si_smem;                  // [n_in] non-zero pixels, ascending
    si_u32* s_thr = (si_u32*)(s_nz + n_in);  // [n_in] their thresholds p * RATE[retry]
    si_u32* s_mul = s_thr + n_in;         // [n_in] pixel * INDEX_MUL
    int* s_pre = (int*)(s_mul + n_in);    // [n_in] the step's spiking pixels
    int* s_in = s_pre + n_in;             // [MAXCH * 32] rank counts
    int* s_e = s_in + MAXCH * 32;         // [32]
    int* s_i = s_e + 32;                  // [32]
    int* s_cls = s_i + 32;                // [SI_MAX_CLASSES] class sums
    int* s_pcls = s_cls + SI_MAX_CLASSES; // [SI_MAX_CLASSES + 1] the presentation's class sums
                                          // and (last) its spikes of assigned neurons (exit)

    const int j0 = tid * NPT;
    const bool active = j0 < Np;          // this thread owns columns j0 .. j0 + NPT - 1
    long long th_e[NPT], th_i[NPT];
    int asg[NPT];
#pragma unroll
    for (int m = 0; m < NPT; ++m) {
        th_e[m] = active ? TH[(k * 2) * Np + j0 + m] : 0;
        th_i[m] = active ? TH[(k * 2 + 1) * Np + j0 + m] : 0;
        asg[m] = active ? ASSIGN[k * Np + j0 + m] : -1;
    }
    if (tid < SI_MAX_CLASSES) s_cls[tid] = 0;

    const si_u32 winner_mul = RNG_WINNER_INDEX * RNG_INDEX_MUL;
    int cnt[NPT];
    // operation counts (block-uniform; thread 0 writes them)
    long long o_pres = 0, o_steps = 0, o_draws = 0, o_in = 0, o_exc = 0, o_exit = 0;

    for (int retry = 0; retry < n_rates; ++retry) {
        const si_u32 ru = RATES[k * R + retry];
        int n_nz;
        {
            bool f[MAXCH], fe[NPT], fi[NPT];
            int pos[MAXCH], pe[NPT], pi[NPT], ne, ni;
#pragma unroll
            for (int c = 0; c < MAXCH; ++c) {
                const int q = c * bd + tid;
                f[c] = q < n_in && img[q] != 0;
            }
#pragma unroll
            for (int m = 0; m < NPT; ++m) fe[m] = fi[m] = false;
            si_rank3(f, pos, n_nz, fe, pe, ne, fi, pi, ni, s_in, s_e, s_i);
#pragma unroll
            for (int c = 0; c < MAXCH; ++c) {
                const int q = c * bd + tid;
                if (f[c]) {
                    s_nz[pos[c]] = q;
                    s_thr[pos[c]] = (si_u32)img[q] * ru;
                    s_mul[pos[c]] = (si_u32)q * RNG_INDEX_MUL;
                }
            }
        }
        long long u[NPT], ui[NPT];
        int ref[NPT], refi[NPT];
        bool sprev[NPT], eprev[NPT], ce[NPT], ci[NPT];
#pragma unroll
        for (int m = 0; m < NPT; ++m) {
            u[m] = ui[m] = 0;
            ref[m] = refi[m] = 0;
            sprev[m] = eprev[m] = ce[m] = ci[m] = false;
            cnt[m] = 0;
        }
        long long n_src = 0, n_exc = 0, n_in_spk = 0;
        int steps = T;
        si_u32 rnd_prev = 0;
        if (exit_on)
            for (int c = tid; c <= SI_MAX_CLASSES; c += bd) s_pcls[c] = 0;
        __syncthreads();   // s_nz, s_thr, s_mul, s_pcls ready; s_in free again

        for (int t = 0; t <= T; ++t) {
            // (1) the input spikes of step t and the crossings of step t - 1, ranked together
            const si_u32 sk = rng_step_key(skey, (si_u32)(retry * T + t));
            bool f[MAXCH];
            int pos[MAXCH], pe[NPT], pi[NPT], n_pre, nc_e, nc_i;
#pragma unroll
            for (int c = 0; c < MAXCH; ++c) {
                const int q = c * bd + tid;
                f[c] = t < T && q < n_nz && rng_fmix32(sk + s_mul[q]) < s_thr[q];
            }
            si_rank3(f, pos, n_pre, ce, pe, nc_e, ci, pi, nc_i, s_in, s_e, s_i);   // barrier 1

            // resolve step t - 1: the one-spike winners, the emitted spikes, the counts
            int n_post = 0;
            if (t > 0) {
                const bool e_pick = LE.one && nc_e > 1;
                const int e_win = e_pick ? (int)(rnd_prev % (si_u32)nc_e) : 0;
                n_post = e_pick ? 1 : nc_e;
                const bool i_pick = LI.one && nc_i > 1;
                const int n_si = i_pick ? 1 : nc_i;
#pragma unroll
                for (int m = 0; m < NPT; ++m) {
                    const bool se = ce[m] && (!e_pick || pe[m] == e_win);
                    const bool si = ci[m] && (!i_pick || pi[m] == 0);
                    if (has_inh) {
                        sprev[m] = si;
                        eprev[m] = se;
                    } else {
                        sprev[m] = se;
                    }
                    cnt[m] += se ? 1 : 0;
                    if (exit_on && se) {  // every spike counts towards MIN_SPIKES
                        atomicAdd(&s_pcls[SI_MAX_CLASSES], 1);
                        if (asg[m] >= 0 && asg[m] < n_classes) atomicAdd(&s_pcls[asg[m]], 1);
                    }
                }
                n_src = has_inh ? n_si : n_post;
                n_exc += n_post;
            }
            if (t == T) break;
#pragma unroll
            for (int c = 0; c < MAXCH; ++c)
                if (f[c]) s_pre[pos[c]] = s_nz[c * bd + tid];
            __syncthreads();                                                      // barrier 2

            // early exit after step t - 1: the same shared sums, the same decision everywhere
            if (exit_on && n_post > 0 && (long long)s_pcls[SI_MAX_CLASSES] >= retry_min
                && si_exit(s_pcls, csize, n_classes, margin)) {
                steps = t;
                break;
            }
            n_in_spk += n_pre;

            // (2) step t: input currents (event-driven, ascending pixels) and neuron updates
            AT acc[NPT];
#pragma unroll
            for (int m = 0; m < NPT; ++m) acc[m] = 0;
            if (active) {
                const WT* col = Wk + j0;
#pragma unroll 2
                for (int q = 0; q < n_pre; ++q) {
                    si_codes cv;
                    const si_load_t* p = (const si_load_t*)(col + (long long)s_pre[q] * Np);
#pragma unroll
                    for (int x = 0; x < SI_NUNITS; ++x) cv.u[x] = p[x];
#pragma unroll
                    for (int m = 0; m < NPT; ++m) acc[m] += (AT)cv.w[m];
                }
            }
#pragma unroll
            for (int m = 0; m < NPT; ++m) {
                ce[m] = ci[m] = false;
                if (active && j0 + m < N) {
                    long long cur = shift >= 0
                        ? (long long)((unsigned long long)(long long)acc[m] << shift)
                        : ((long long)acc[m] >> (-shift));
                    if (n_src) cur += lat * (n_src - (sprev[m] ? 1 : 0));
                    ce[m] = si_step(u[m], ref[m], cur, th_e[m], LE);
                    if (has_inh)
                        ci[m] = si_step(ui[m], refi[m], eprev[m] ? ei : 0, th_i[m], LI);
                }
            }
            rnd_prev = rng_fmix32(sk + winner_mul);
        }
        __syncthreads();   // every thread is done with s_in / s_e / s_i / s_nz of this presentation
        o_pres += 1;
        o_steps += steps;
        o_draws += (long long)steps * n_nz;
        o_in += n_in_spk;
        o_exc += n_exc;
        o_exit += steps < T ? 1 : 0;
        if (n_exc >= retry_min) break;   // (an early exit always has enough spikes)
    }
    if (tid == 0) {
        long long* o = ops + (k * B + b) * N_IO;
        o[IO_PRESENTATIONS] = o_pres;
        o[IO_STEPS] = o_steps;
        o[IO_DRAWS] = o_draws;
        o[IO_INPUT_SPIKES] = o_in;
        o[IO_EXC_SPIKES] = o_exc;
        o[IO_EXIT_EARLY] = o_exit;
    }

    // counts of the last presentation, and the all-activity vote (intsim.classify)
#pragma unroll
    for (int m = 0; m < NPT; ++m) {
        const int j = j0 + m;
        if (active && j < N) {
            counts[(k * B + b) * (long long)N + j] = cnt[m];
            const int a = ASSIGN[k * Np + j];
            if (a >= 0 && a < n_classes && cnt[m]) atomicAdd(&s_cls[a], cnt[m]);
        }
    }
    __syncthreads();
    if (tid == 0) {
        const long long* cs = CSIZE + k * SI_MAX_CLASSES;
        long long best = 0, best_sum = 0, best_n = 1;
        for (int c = 0; c < n_classes; ++c) {
            const long long n_c = cs[c];
            const long long s_c = n_c ? (long long)s_cls[c] : 0;
            const long long n_eff = n_c ? n_c : 1;
            if (s_c * best_n > best_sum * n_eff) {
                best = c;
                best_sum = s_c;
                best_n = n_eff;
            }
        }
        preds[k * B + b] = best;
    }
}
