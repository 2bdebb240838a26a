// The counter-based generator of tinysnn_core/counter_rng.py on the GPU, arithmetic modulo 2**32,
// shared by the float kernel (snn_kernels.cu) and the integer kernel (snn_int_kernels.cu).
// A presentation step's key is fmix32(sample_key ^ STEP_MUL * step); pixel i spikes at that step
// when fmix32(key + i * INDEX_MUL) < its threshold, and the step's one-spike word is the same
// draw for the index WINNER_INDEX. Also valid C++ under tests/emu/cuda_emu.h.
#ifndef SNN_RNG_CUH
#define SNN_RNG_CUH

#define RNG_STEP_MUL 0x85EBCA77u
#define RNG_INDEX_MUL 0xC2B2AE3Du
#define RNG_WINNER_INDEX 0xFFFFu

typedef unsigned int rng_u32;

__device__ __forceinline__ rng_u32 rng_fmix32(rng_u32 x)
{
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    return x;
}

// key of presentation step `step` (retry * T + t) of the sample with key `skey`
__device__ __forceinline__ rng_u32 rng_step_key(rng_u32 skey, rng_u32 step)
{
    return rng_fmix32(skey ^ (RNG_STEP_MUL * step));
}

#endif
