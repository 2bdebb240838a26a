/* Host port: a native process speaking the protocol on stdin/stdout (a pipe, or a
 * pseudo-terminal set up by the runner). POSIX read/write, nothing else. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "../../port.h"

static unsigned char out_buf[512];
static size_t out_len;

void port_init(void) { out_len = 0; }

void port_uart_flush(void)
{
    size_t done = 0;
    while (done < out_len) {
        ssize_t n = write(1, out_buf + done, out_len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            break; /* the other side is gone; nothing sensible left to do */
        }
        done += (size_t)n;
    }
    out_len = 0;
}

void port_uart_putc(uint8_t c)
{
    if (out_len == sizeof(out_buf))
        port_uart_flush();
    out_buf[out_len++] = c;
    if (c == '\n')
        port_uart_flush();
}

int port_uart_getc(void)
{
    static unsigned char in_buf[256];
    static size_t in_len, in_pos;
    if (in_pos == in_len) {
        ssize_t n;
        port_uart_flush();
        do {
            n = read(0, in_buf, sizeof(in_buf));
        } while (n < 0 && errno == EINTR);
        if (n <= 0)
            return -1;
        in_len = (size_t)n;
        in_pos = 0;
    }
    return in_buf[in_pos++];
}

uint32_t port_cycles(void)
{
    /* Nanoseconds of the process's CPU time: a "cycle" here is 1 ns of host CPU time. */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

uint32_t port_time_us(void)
{
    /* Wall time (the m-lap-us lines measure throughput, which is wall time on a host). */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

void port_timestamp_pulse(void) {} /* a process has no pin */

const char *port_board_name(void) { return "host"; }
const char *port_cycle_source(void) { return "host-process-cpu-ns"; }
uint32_t port_clock_hz(void) { return 1000000000u; }
