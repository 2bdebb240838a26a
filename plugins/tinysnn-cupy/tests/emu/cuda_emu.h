// A minimal CUDA emulation for tests: compiles tinysnn_cupy/cuda/snn_kernels.cu as C++ and runs
// every CUDA thread of a block as an OS thread (blocks one after the other). Enough of CUDA for
// these kernels: threadIdx/blockIdx/blockDim, __syncthreads (a block barrier), __ballot_sync
// (a warp barrier; all 32 lanes must call it, as they do with a full mask), __popc, and
// dynamic shared memory (one static buffer, since one block runs at a time).
#pragma once
#include <barrier>
#include <cmath>

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__

struct emu_dim3 {
    unsigned x, y, z;
};
extern thread_local emu_dim3 threadIdx;
extern emu_dim3 blockIdx, blockDim, gridDim;

void __syncthreads();
unsigned __ballot_sync(unsigned mask, int pred);
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
using std::fabs;
using std::fmax;
using std::pow;
