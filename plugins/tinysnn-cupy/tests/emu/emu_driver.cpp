// Host driver of the CUDA emulation (see cuda_emu.h): exposes the kernels as C functions that
// run a whole grid on CPU threads. Built by tests/test_cupy_emulated.py with g++ -std=c++20.
#include "cuda_emu.h"

#include <memory>
#include <thread>
#include <vector>

extern "C" {
double snn_smem[1 << 17];   // 1 MiB of "shared memory"
}

#include "snn_kernels.cu"

#include "emu_runtime.h"

extern "C" long long emu_smem_bytes() { return (long long)sizeof(snn_smem); }

extern "C" void emu_infer(unsigned gx, unsigned gy, unsigned bx, const double* W, const double* theta,
                          const unsigned char* images, const unsigned* skeys,
                          const unsigned* rate_units, const double* fp, const long long* ip, int B,
                          int* counts, long long* ops)
{
    launch(gx, gy, bx, [=] { snn_infer(W, theta, images, skeys, rate_units, fp, ip, B, counts, ops); });
}

extern "C" void emu_train(unsigned bx, double* W, double* theta, const unsigned char* images,
                          const unsigned* skeys, const unsigned* rate_units, const double* fp,
                          const long long* ip, int B, double* acc, double* factor, int* colcnt,
                          int* counts, long long* ops)
{
    launch(1, 1, bx, [=] {
        snn_train(W, theta, images, skeys, rate_units, fp, ip, B, acc, factor, colcnt, counts, ops);
    });
}
