/* libFuzzer harness for the device-side command parser (protocol.c) with the protocol test
 * engine. Every input is fed byte by byte to a freshly initialised protocol; the port writes
 * into a sink that checks the output's own invariants (lines end in CRLF, no line longer than
 * the protocol's line buffer, every frame answered with m-ready at most once per '%').
 * Build: make fuzz (clang -fsanitize=fuzzer,address,undefined). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "port.h"
#include "protocol.h"

static size_t line_len;
static size_t max_line;
static unsigned long readies;

void port_init(void) {}
void port_uart_flush(void) {}
int port_uart_getc(void) { return -1; }
uint32_t port_cycles(void) { return 0; }
void port_timestamp_gpio(int level) { (void)level; }
const char *port_board_name(void) { return "fuzz"; }
const char *port_cycle_source(void) { return "none"; }
uint32_t port_clock_hz(void) { return 1; }

void port_uart_putc(uint8_t c)
{
    static uint8_t prev;
    if (c == '\n') {
        if (prev != '\r')
            abort(); /* every line ends in CRLF */
        if (line_len > max_line)
            max_line = line_len;
        line_len = 0;
    } else {
        line_len++;
        if (line_len > 330)
            abort(); /* longer than the protocol's 320-byte line buffer + CRLF */
    }
    if (c == 'y' && prev == 'd')
        readies++; /* counts "...dy" of m-ready, a cheap proxy */
    prev = c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i, frames = 0;
    tsnn_proto_init();
    readies = 0;
    line_len = 0;
    for (i = 0; i < size; i++) {
        tsnn_proto_feed(data[i]);
        if (data[i] == '%')
            frames++;
    }
    if (readies > frames)
        abort(); /* at most one m-ready per frame */
    return 0;
}
