// Host driver of the CUDA emulation for the integer kernel (snn_int_kernels.cu): one OS thread
// per CUDA thread, blocks one after the other. Built by tests/conftest.py with g++ -std=c++20
// and the kernel's defines (-DNPT -DMAXCH -DWT -DAT).
#include "cuda_emu.h"

extern "C" {
int si_smem[1 << 18];   // 1 MiB of "shared memory"
}

#include "snn_int_kernels.cu"

#include "emu_runtime.h"

extern "C" long long emu_int_smem_bytes() { return (long long)sizeof(si_smem); }

extern "C" void emu_int_infer(unsigned gx, unsigned gy, unsigned bx, const WT* W,
                              const long long* TH, const int* ASSIGN, const long long* CSIZE,
                              const long long* MP, const unsigned* RATES, int R,
                              const unsigned char* images, const unsigned* skeys, int b0, int B,
                              int n_in, int N, int Np, int* counts, long long* preds,
                              long long* ops)
{
    launch(gx, gy, bx, [=] {
        snn_int_infer(W, TH, ASSIGN, CSIZE, MP, RATES, R, images, skeys, b0, B, n_in, N, Np,
                      counts, preds, ops);
    });
}
