/* The inference engine interface: the only thing the protocol layer needs from a model.
 *
 * The real engine (engine.c + the generated model_data.c/.h) implements docs/fixed-point.md.
 * testengine/ holds a PROTOCOL TEST ENGINE that is not a neural network at all: it exists only
 * to test the link, the protocol and the ports. */
#ifndef TSNN_ENGINE_H
#define TSNN_ENGINE_H

#include <stdint.h>

#define TSNN_IMAGE_BYTES 784u

/* The engine's own header provides:
 *   TSNN_N_NEURONS   number of excitatory neurons whose spike counts are reported
 *   TSNN_N_CLASSES   number of classes (10 for MNIST)
 *   TSNN_MODEL_NAME  a short ASCII name (no spaces, no '%')
 *   TSNN_ENGINE_NAME a short ASCII name of the engine implementation */
#include "engine_config.h"

/* Run one inference on a 28x28 uint8 image. Input spikes come from the engine's
 * counter-based PRNG keyed by (seed, sample_id, step, pixel), so only the image and the seed
 * cross the link. Writes TSNN_N_NEURONS spike counts and the predicted class.
 * Returns 0 on success, a positive engine-specific error code otherwise. No heap, no floats. */
int tsnn_infer(const uint8_t image[TSNN_IMAGE_BYTES], uint32_t seed, uint32_t sample_id,
               uint16_t *spike_counts, uint8_t *prediction);

/* The label assignment the engine votes with (docs/fixed-point.md, section 7): the class of
 * each neuron (-1: none) and the number of neurons of each class. The protocol reports the
 * class scores of that vote (the EEMBC results line). */
extern const int8_t tsnn_assign[TSNN_N_NEURONS];
extern const uint16_t tsnn_class_size[TSNN_N_CLASSES];

#endif
