/* Device side of the tinySNN board protocol (docs/protocol.md): EEMBC / MLPerf Tiny style
 * '%'-terminated commands with m-/e- reply lines and m-ready, plus sequence numbers and
 * CRC-32 integrity. Robust against any byte sequence: bounded buffers, no heap. */
#ifndef TSNN_PROTOCOL_H
#define TSNN_PROTOCOL_H

#include <stdint.h>

#define TSNN_CMD_MAX 256u        /* longest command body accepted, bytes before the '%' */
#define TSNN_DB_MAX 1024u        /* data buffer (one sample is 792 bytes) */
#define TSNN_SAMPLE_BYTES 792u   /* 784 image bytes + seed (u32 LE) + sample id (u32 LE) */
#define TSNN_SPIKES_PER_LINE 8u  /* index:count pairs per m-spikes line (short lines survive a damaged link) */
#define TSNN_REPLY_COPIES_MAX 64u /* BODY*R: the reply sent R times (a damaged link) */
#define TSNN_MAX_RUNS 100000u    /* upper bound for N and W in infer N W */
/* An image loaded alone (784 bytes, as the MLPerf Tiny runner sends it) runs with this seed
 * and sample id: seed 2 is the test stream of run seed 0 (docs/fixed-point.md, section 5). */
#define TSNN_IMAGE_ONLY_SEED 2u
#define TSNN_IMAGE_ONLY_SAMPLE_ID 0u

/* Forget everything (buffer, results, sequence memory). Call once at boot. */
void tsnn_proto_init(void);

/* Feed one received byte; a complete command (at '%') is executed and answered at once. */
void tsnn_proto_feed(uint8_t byte);

/* The boot banner (m-boot-... and m-ready). */
void tsnn_proto_banner(void);

#endif
