/* Port for QEMU's mps2-an386 machine (Cortex-M4, 25 MHz system clock).
 *
 * The AN386 FPGA image is the AN385's with a Cortex-M4 in place of the Cortex-M3, and QEMU
 * models both with the same board code: the same memory map, CMSDK APB UART0 at 0x40004000
 * with its RX interrupt on IRQ 0, the FPGA GPIO0 at 0x40010000, SysTick on the 25 MHz
 * processor clock. QEMU models no DWT cycle counter on either core, so the counter is the
 * AN385's: SysTick ticks x 40 = guest instructions executed under `-icount shift=0`
 * (resolution 40; docs/boards.md), not Cortex-M4 cycles. This port is therefore the AN385's
 * code under this board's name. The core has an FPU; the firmware is integer only
 * (-mfloat-abi=soft) and leaves it off. */
#define port_board_name port_board_name_an385
#include "../qemu-mps2-an385/port.c"
#undef port_board_name

const char *port_board_name(void) { return "qemu-mps2-an386"; }
