/* PROTOCOL TEST ENGINE. This is NOT the spiking network and predicts nothing meaningful.
 *
 * It gives the protocol tests a deterministic, cheap function of every byte that crossed
 * the link, so a wrong byte, a wrong seed or a wrong sample id shows up in the results:
 *   spike_counts[k] = (sum of image[i] for i % 10 == k) + (seed >> k & 0xFF) + sample_id % 7
 *                     (mod 65536)
 *   prediction      = (sum of all image bytes + seed + sample_id) mod 10
 *   assignment      neuron k votes for class k (one neuron a class), so the class scores
 *                   of the EEMBC results line are the ten counts; the prediction is NOT
 *                   their argmax
 * tinysnn_serial.protocol.protocol_test_engine() computes the same on the host. */
#include "engine.h"

const int8_t tsnn_assign[TSNN_N_NEURONS] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
const uint16_t tsnn_class_size[TSNN_N_CLASSES] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

int tsnn_infer(const uint8_t image[TSNN_IMAGE_BYTES], uint32_t seed, uint32_t sample_id,
               uint16_t *spike_counts, uint8_t *prediction)
{
    uint32_t sums[TSNN_N_NEURONS];
    uint32_t total = 0;
    unsigned i;
    for (i = 0; i < TSNN_N_NEURONS; i++)
        sums[i] = 0;
    for (i = 0; i < TSNN_IMAGE_BYTES; i++) {
        sums[i % TSNN_N_NEURONS] += image[i];
        total += image[i];
    }
    for (i = 0; i < TSNN_N_NEURONS; i++)
        spike_counts[i] = (uint16_t)((sums[i] + ((seed >> i) & 0xFFu) + sample_id % 7u) & 0xFFFFu);
    *prediction = (uint8_t)((total + seed + sample_id) % 10u);
    return 0;
}
