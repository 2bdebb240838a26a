/* PROTOCOL TEST ENGINE configuration: not a model. See testengine/engine.c. */
#ifndef TSNN_ENGINE_CONFIG_H
#define TSNN_ENGINE_CONFIG_H
#define TSNN_N_NEURONS 10u
#define TSNN_N_CLASSES 10u
#define TSNN_MODEL_NAME "none"
#define TSNN_ENGINE_NAME "protocol-test-engine"
#endif
