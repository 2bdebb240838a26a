// The emulation's runtime (block barrier, warp ballots, grid launch on OS threads), shared by
// the drivers of the float (emu_driver.cpp) and integer (emu_int_driver.cpp) kernels.
#pragma once
#include <barrier>
#include <memory>
#include <thread>
#include <vector>

thread_local emu_dim3 threadIdx;
emu_dim3 blockIdx, blockDim, gridDim;

static std::barrier<>* g_block_barrier;
static std::vector<std::unique_ptr<std::barrier<>>> g_warp_barriers;
static int g_votes[32][32];

void __syncthreads() { g_block_barrier->arrive_and_wait(); }

unsigned __ballot_sync(unsigned, int pred)
{
    const unsigned w = threadIdx.x >> 5, l = threadIdx.x & 31;
    g_votes[w][l] = pred ? 1 : 0;
    g_warp_barriers[w]->arrive_and_wait();
    unsigned r = 0;
    for (int i = 0; i < 32; ++i)
        if (g_votes[w][i]) r |= 1u << i;
    g_warp_barriers[w]->arrive_and_wait();
    return r;
}

template <class F>
static void launch(unsigned gx, unsigned gy, unsigned bx, F body)
{
    blockDim = {bx, 1, 1};
    gridDim = {gx, gy, 1};
    std::barrier<> bar(bx);
    g_block_barrier = &bar;
    g_warp_barriers.clear();
    for (unsigned w = 0; w < bx / 32; ++w) g_warp_barriers.emplace_back(new std::barrier<>(32));
    for (unsigned y = 0; y < gy; ++y) {
        for (unsigned x = 0; x < gx; ++x) {
            blockIdx = {x, y, 0};
            std::vector<std::thread> threads;
            for (unsigned t = 0; t < bx; ++t)
                threads.emplace_back([t, &body] {
                    threadIdx = {t, 0, 0};
                    body();
                });
            for (auto& th : threads) th.join();
        }
    }
}

