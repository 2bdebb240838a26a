/* Port for STM32L4 Nucleo-64/32 boards (Cortex-M4F). NOT YET TRIED ON HARDWARE.
 *
 * Clock: HSI16 -> PLL (M=1, N=10, R=2) -> 80 MHz SYSCLK, voltage range 1, 4 flash wait
 * states, instruction/data caches and prefetch on (RM0351 sections 6.4, 3.3.3).
 * UART: USART2 (ST-LINK virtual COM port): PA2 TX (AF7), PA3 RX (AF7) on the Nucleo-L476RG,
 * PA2 TX / PA15 RX (AF7 / AF3) on the Nucleo-L432KC; 115200 8N1, polled.
 * Cycles: DWT CYCCNT, the real core clock cycle counter.
 * Timestamp GPIO: PA5 (LD2 and Arduino D13 on the L476RG) / PB3 (LD3, D13 on the L432KC). */
#include <stdint.h>

#include "../../port.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC_BASE 0x40021000u
#define RCC_CR REG(RCC_BASE + 0x00u)
#define RCC_CFGR REG(RCC_BASE + 0x08u)
#define RCC_PLLCFGR REG(RCC_BASE + 0x0Cu)
#define RCC_AHB2ENR REG(RCC_BASE + 0x4Cu)
#define RCC_APB1ENR1 REG(RCC_BASE + 0x58u)
#define FLASH_ACR REG(0x40022000u)
#define PWR_CR1 REG(0x40007000u)
#define PWR_SR2 REG(0x40007014u)

#define GPIOA_BASE 0x48000000u
#define GPIOB_BASE 0x48000400u
#define GPIO_MODER(b) REG((b) + 0x00u)
#define GPIO_OSPEEDR(b) REG((b) + 0x08u)
#define GPIO_BSRR(b) REG((b) + 0x18u)
#define GPIO_AFRL(b) REG((b) + 0x20u)
#define GPIO_AFRH(b) REG((b) + 0x24u)

#define USART2_BASE 0x40004400u
#define USART_CR1 REG(USART2_BASE + 0x00u)
#define USART_BRR REG(USART2_BASE + 0x0Cu)
#define USART_ISR REG(USART2_BASE + 0x1Cu)
#define USART_ICR REG(USART2_BASE + 0x20u)
#define USART_RDR REG(USART2_BASE + 0x24u)
#define USART_TDR REG(USART2_BASE + 0x28u)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)

#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)

#define SYSCLK_HZ 80000000u

static void gpio_mode(uint32_t base, unsigned pin, uint32_t mode)
{
    GPIO_MODER(base) = (GPIO_MODER(base) & ~(3u << (2 * pin))) | (mode << (2 * pin));
}

static void gpio_af(uint32_t base, unsigned pin, uint32_t af)
{
    if (pin < 8)
        GPIO_AFRL(base) = (GPIO_AFRL(base) & ~(0xFu << (4 * pin))) | (af << (4 * pin));
    else
        GPIO_AFRH(base) = (GPIO_AFRH(base) & ~(0xFu << (4 * (pin - 8)))) | (af << (4 * (pin - 8)));
    gpio_mode(base, pin, 2u);
}

static void clock_80mhz(void)
{
    RCC_APB1ENR1 |= 1u << 28; /* PWREN */
    PWR_CR1 = (PWR_CR1 & ~(3u << 9)) | (1u << 9); /* voltage range 1 */
    while (PWR_SR2 & (1u << 10)) { /* VOSF: wait until the regulator is ready */
    }
    FLASH_ACR = (FLASH_ACR & ~7u) | 4u | (1u << 8) | (1u << 9) | (1u << 10); /* 4 WS, PRFT, IC, DC */
    while ((FLASH_ACR & 7u) != 4u) {
    }
    RCC_CR |= 1u << 8; /* HSION */
    while (!(RCC_CR & (1u << 10))) {
    }
    RCC_CR &= ~(1u << 24); /* PLL off while configuring */
    while (RCC_CR & (1u << 25)) {
    }
    /* PLLSRC = HSI16 (2), PLLM = /1 (0), PLLN = 10, PLLR = /2 (0), PLLREN */
    RCC_PLLCFGR = 2u | (0u << 4) | (10u << 8) | (0u << 25) | (1u << 24);
    RCC_CR |= 1u << 24;
    while (!(RCC_CR & (1u << 25))) {
    }
    RCC_CFGR = (RCC_CFGR & ~3u) | 3u; /* SW = PLL; AHB, APB1, APB2 undivided */
    while (((RCC_CFGR >> 2) & 3u) != 3u) {
    }
}

void port_init(void)
{
    clock_80mhz();
    RCC_AHB2ENR |= 3u;        /* GPIOA, GPIOB */
    RCC_APB1ENR1 |= 1u << 17; /* USART2 */
    (void)RCC_APB1ENR1;
    gpio_af(GPIOA_BASE, 2, 7u);
#ifdef TSNN_NUCLEO_L432KC
    gpio_af(GPIOA_BASE, 15, 3u);
    gpio_mode(GPIOB_BASE, 3, 1u);
#else
    gpio_af(GPIOA_BASE, 3, 7u);
    gpio_mode(GPIOA_BASE, 5, 1u);
#endif
    USART_CR1 = 0;
    USART_BRR = (SYSCLK_HZ + 115200u / 2u) / 115200u; /* oversampling by 16 */
    USART_CR1 = (1u << 3) | (1u << 2) | 1u;          /* TE, RE, UE */
    DEMCR |= 1u << 24;                                /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;                                   /* CYCCNTENA */
    port_timestamp_gpio(0);
}

void port_uart_putc(uint8_t c)
{
    while (!(USART_ISR & ISR_TXE)) {
    }
    USART_TDR = c;
}

void port_uart_flush(void) {}

int port_uart_getc(void)
{
    for (;;) {
        uint32_t isr = USART_ISR;
        if (isr & ISR_ORE)
            USART_ICR = ISR_ORE; /* a lost byte: the protocol's CRC and retry handle it */
        if (isr & ISR_RXNE)
            return (int)(USART_RDR & 0xFFu);
    }
}

uint32_t port_cycles(void) { return DWT_CYCCNT; }

void port_timestamp_gpio(int level)
{
#ifdef TSNN_NUCLEO_L432KC
    GPIO_BSRR(GPIOB_BASE) = level ? (1u << 3) : (1u << (3 + 16));
#else
    GPIO_BSRR(GPIOA_BASE) = level ? (1u << 5) : (1u << (5 + 16));
#endif
}

const char *port_board_name(void)
{
#ifdef TSNN_NUCLEO_L432KC
    return "nucleo-l432kc";
#else
    return "nucleo-l476rg";
#endif
}
const char *port_cycle_source(void) { return "dwt-cyccnt"; }
uint32_t port_clock_hz(void) { return SYSCLK_HZ; }
