/* The porting layer: everything a board must provide (in the spirit of MLPerf Tiny's th_*).
 *
 * A port is one C file (ports/<name>/port.c) plus, for bare-metal targets, its startup code
 * and linker script. Portable code (protocol.c, main.c, the engine) calls only these. */
#ifndef TSNN_PORT_H
#define TSNN_PORT_H

#include <stdint.h>

/* Bring up clocks, the UART, the cycle counter, the microsecond clock and the timestamp pin
 * (released). */
void port_init(void);

/* Send one byte to the host (blocking until the transmitter accepts it). */
void port_uart_putc(uint8_t c);

/* Push buffered output out (a no-op on ports whose putc is unbuffered). */
void port_uart_flush(void);

/* Receive one byte (blocking). Returns 0..255, or -1 when the link is gone for good
 * (only the host port can see that: end of file on stdin). */
int port_uart_getc(void);

/* A free-running counter of core clock cycles (wraps at 2^32; differences are valid
 * as long as the measured window is shorter than one wrap). What a "cycle" is on each
 * port is stated by port_cycle_source(). */
uint32_t port_cycles(void);

/* A free-running microsecond clock for the m-lap-us lines (wraps at 2^32 us, about 71.6
 * minutes; differences are valid across one wrap). What a microsecond is on each port (wall
 * time, QEMU's virtual clock, a hardware timer) is in docs/boards.md. */
uint32_t port_time_us(void);

/* How long a timestamp pulse holds the pin low, in microseconds (at least this long). */
#define PORT_TIMESTAMP_PULSE_US 20u

/* One timestamp on the timestamp pin, in the EEMBC energy-mode convention: the pin is open
 * drain and released (pulled high) when idle; a timestamp pulls it low for
 * PORT_TIMESTAMP_PULSE_US, then releases it. The falling edge is the moment an energy monitor
 * records. An inference window is marked by two timestamps (docs/protocol.md). */
void port_timestamp_pulse(void);

/* Short constant strings for the profile% reply (ASCII, no spaces, no '%'). */
const char *port_board_name(void);
const char *port_cycle_source(void);
uint32_t port_clock_hz(void);

#endif
