/* Port for QEMU's mps2-an385 machine (Cortex-M3, 25 MHz system clock).
 *
 * UART: CMSDK APB UART0 at 0x40004000 (DATA, STATE, CTRL, INTSTATUS, BAUDDIV), polled.
 * Cycles: QEMU does not model the DWT cycle counter on the M3, so the counter is SysTick on
 * the 25 MHz processor clock, extended to 32 bits by counting its wrap interrupts. Under
 * `-icount shift=0` QEMU advances virtual time by 1 ns per guest instruction, so one SysTick
 * tick (40 ns) is 40 instructions: port_cycles() returns ticks * 40 = instructions executed
 * (resolution 40), a deterministic count, not real Cortex-M3 cycles (docs/boards.md).
 * Waiting for input: WFI, woken by the UART0 RX interrupt (IRQ 0).
 * Timestamp pin: the AN385 FPGA GPIO0 at 0x40010000, pin 0 (QEMU models the register file),
 * high when idle, pulsed low for a timestamp.
 * Microseconds (m-lap-us): QEMU's virtual clock from the same SysTick, 25 ticks a microsecond;
 * under -icount shift=0 that is 1,000 guest instructions, not real Cortex-M3 time. */
#include <stdint.h>

#include "../../port.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define UART0_BASE 0x40004000u
#define UART_DATA REG(UART0_BASE + 0x000u)
#define UART_STATE REG(UART0_BASE + 0x004u)
#define UART_CTRL REG(UART0_BASE + 0x008u)
#define UART_INTCLEAR REG(UART0_BASE + 0x00Cu)
#define UART_BAUDDIV REG(UART0_BASE + 0x010u)
#define NVIC_ISER0 REG(0xE000E100u)
#define UART_STATE_TXFULL 0x1u
#define UART_STATE_RXFULL 0x2u

#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)

#define GPIO0_DATAOUT REG(0x40010004u)
#define GPIO0_OUTENSET REG(0x40010010u)

#define CLOCK_HZ 25000000u
#define SYSTICK_RELOAD 0x00FFFFFFu
/* ns per tick at 25 MHz, divided by the ns per instruction of -icount shift=0 (1 ns). */
#define INSTR_PER_TICK 40u

static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { systick_wraps++; }

/* UART0 RX is external interrupt 0 on the AN385: it only wakes the core from WFI. */
void Irq0_Handler(void) { UART_INTCLEAR = 0x2u; }

void port_init(void)
{
    UART_BAUDDIV = CLOCK_HZ / 115200u;
    UART_CTRL = 0x3u | 0x8u; /* TX and RX enable, RX interrupt (wakes WFI) */
    NVIC_ISER0 = 1u;         /* UART0 RX */
    systick_wraps = 0;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 0x7u; /* processor clock, interrupt on wrap, enable */
    GPIO0_DATAOUT = 1u; /* the timestamp pin idles released (high) */
    GPIO0_OUTENSET = 1u;
}

void port_uart_putc(uint8_t c)
{
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = c;
}

void port_uart_flush(void) {}

int port_uart_getc(void)
{
    /* Sleep until a byte arrives: an idle core lets QEMU serve the socket at once (a busy
     * poll makes every reply wait for QEMU's periodic kick). Not part of any measurement. */
    while (!(UART_STATE & UART_STATE_RXFULL)) {
        __asm volatile("cpsid i" ::: "memory"); /* no wake-up lost between test and WFI */
        if (!(UART_STATE & UART_STATE_RXFULL))
            __asm volatile("wfi");
        __asm volatile("cpsie i" ::: "memory");
    }
    return (int)(UART_DATA & 0xFFu);
}

/* The wrap count and the SysTick counter read together (again if a wrap came in between). */
static inline void systick_read(uint32_t *hi, uint32_t *lo)
{
    uint32_t again;
    do {
        *hi = systick_wraps;
        *lo = SYST_CVR;
        again = systick_wraps;
    } while (*hi != again);
}

uint32_t port_cycles(void)
{
    uint32_t hi, lo;
    systick_read(&hi, &lo);
    return (hi * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - lo)) * INSTR_PER_TICK;
}

uint32_t port_time_us(void)
{
    /* QEMU's virtual clock: SysTick ticks at 25 MHz, 25 ticks a microsecond. One wrap is
     * 2^24 = 25 * 671088 + 16 ticks, so no 64-bit division is needed (exact while
     * wraps * 16 + 2^24 < 2^32, i.e. for the first 2.8 years of virtual time). */
    uint32_t hi, lo;
    systick_read(&hi, &lo);
    return hi * 671088u + (hi * 16u + (SYSTICK_RELOAD - lo)) / 25u;
}

void port_timestamp_pulse(void)
{
    /* GPIO0 pin 0 released (1) when idle; low for the pulse width of virtual time */
    const uint32_t t0 = port_time_us();
    GPIO0_DATAOUT = 0u;
    while (port_time_us() - t0 <= PORT_TIMESTAMP_PULSE_US) {
    }
    GPIO0_DATAOUT = 1u;
}

const char *port_board_name(void) { return "qemu-mps2-an385"; }
const char *port_cycle_source(void) { return "qemu-icount-instructions"; }
uint32_t port_clock_hz(void) { return CLOCK_HZ; }
