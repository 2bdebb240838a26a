/* nonleaky-if, one neuron, one time step: the C twin of NonLeakyIF.integer_step (tinysnn-example).
 *
 * tinysnn-serial's generic engine includes this file as neuron_step.h (docs/plugins.md, "Neuron
 * models"). All values are codes of the potential format, relative to rest: u the potential,
 * ref the refractory count, cur this step's input current, th the neuron's threshold. The
 * generator defines TSNN_NEURON_U_MIN/U_MAX (the format's range), TSNN_NEURON_RESET,
 * TSNN_NEURON_REFRAC and this model's constants (TSNN_NEURON_FLOOR). Returns 1 when the neuron
 * crossed its threshold; the engine applies the one-spike rule afterwards. */
#ifndef NONLEAKY_IF_STEP_H
#define NONLEAKY_IF_STEP_H

#include <stdint.h>

static int tsnn_neuron_step(int64_t *u, int32_t *ref, int64_t cur, int64_t th)
{
    int64_t v = *u;
    if (*ref <= 0)
        v += cur;
    if (v < TSNN_NEURON_FLOOR) /* inhibition cannot wind the potential up forever */
        v = TSNN_NEURON_FLOOR;
    if (v < TSNN_NEURON_U_MIN)
        v = TSNN_NEURON_U_MIN;
    if (v > TSNN_NEURON_U_MAX)
        v = TSNN_NEURON_U_MAX;
    *ref -= 1;
    if (v >= th) {
        *u = TSNN_NEURON_RESET;
        *ref = TSNN_NEURON_REFRAC;
        return 1;
    }
    *u = v;
    return 0;
}

#endif
