/* Port for STM32L4 Nucleo-64/32 boards (Cortex-M4F). NOT YET TRIED ON HARDWARE.
 *
 * Clock: HSI16 -> PLL (M=1, N=10, R=2) -> 80 MHz SYSCLK, voltage range 1, 4 flash wait
 * states, instruction/data caches and prefetch on (RM0351 sections 6.4, 3.3.3).
 * UART: USART2 (ST-LINK virtual COM port): PA2 TX (AF7), PA3 RX (AF7) on the Nucleo-L476RG,
 * PA2 TX / PA15 RX (AF7 / AF3) on the Nucleo-L432KC; 8N1, polled, TSNN_UART_BAUD baud
 * (115200; `make ... BAUD=9600` for the MLPerf Tiny runner's energy mode).
 * Cycles: DWT CYCCNT, the real core clock cycle counter.
 * Microseconds (m-lap-us): TIM2, a 32-bit timer, prescaled from 80 MHz to 1 MHz.
 * Timestamp pin: PA8, open drain with the internal pull-up, released when idle, pulled low
 * for a timestamp. PA8 is Arduino D7 on the Nucleo-L476RG (the D7 that an LPM01A on the
 * Arduino connector reads) and Arduino Nano D9 on the Nucleo-L432KC; no LED is on it (the
 * user LEDs are PA5 / LD2 and PB3 / LD3). Wiring: docs/boards.md. */
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
#define GPIO_MODER(b) REG((b) + 0x00u)
#define GPIO_OTYPER(b) REG((b) + 0x04u)
#define GPIO_OSPEEDR(b) REG((b) + 0x08u)
#define GPIO_PUPDR(b) REG((b) + 0x0Cu)
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
#define ISR_TC (1u << 6)
#define ISR_TXE (1u << 7)

#define TIM2_BASE 0x40000000u
#define TIM2_CR1 REG(TIM2_BASE + 0x00u)
#define TIM2_EGR REG(TIM2_BASE + 0x14u)
#define TIM2_CNT REG(TIM2_BASE + 0x24u)
#define TIM2_PSC REG(TIM2_BASE + 0x28u)
#define TIM2_ARR REG(TIM2_BASE + 0x2Cu)

#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)

#define SYSCLK_HZ 80000000u
#ifndef TSNN_UART_BAUD
#define TSNN_UART_BAUD 115200u
#endif

#define TIMESTAMP_PIN 8u /* PA8 */

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
    RCC_AHB2ENR |= 1u;               /* GPIOA */
    RCC_APB1ENR1 |= (1u << 17) | 1u; /* USART2, TIM2 */
    (void)RCC_APB1ENR1;
    gpio_af(GPIOA_BASE, 2, 7u);
#ifdef TSNN_NUCLEO_L432KC
    gpio_af(GPIOA_BASE, 15, 3u);
#else
    gpio_af(GPIOA_BASE, 3, 7u);
#endif
    /* the timestamp pin: released (ODR = 1) before it becomes an open-drain output */
    GPIO_BSRR(GPIOA_BASE) = 1u << TIMESTAMP_PIN;
    GPIO_OTYPER(GPIOA_BASE) |= 1u << TIMESTAMP_PIN;
    GPIO_PUPDR(GPIOA_BASE) = (GPIO_PUPDR(GPIOA_BASE) & ~(3u << (2 * TIMESTAMP_PIN))) |
                             (1u << (2 * TIMESTAMP_PIN)); /* pull-up */
    gpio_mode(GPIOA_BASE, TIMESTAMP_PIN, 1u);
    /* TIM2 at 1 MHz (APB1 undivided: the timer clock is SYSCLK), counting up to 2^32 - 1 */
    TIM2_PSC = SYSCLK_HZ / 1000000u - 1u;
    TIM2_ARR = 0xFFFFFFFFu;
    TIM2_EGR = 1u; /* UG: load the prescaler now */
    TIM2_CR1 = 1u; /* CEN */
    USART_CR1 = 0;
    USART_BRR = (SYSCLK_HZ + TSNN_UART_BAUD / 2u) / TSNN_UART_BAUD; /* oversampling by 16 */
    USART_CR1 = (1u << 3) | (1u << 2) | 1u;          /* TE, RE, UE */
    DEMCR |= 1u << 24;                                /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;                                   /* CYCCNTENA */
}

void port_uart_putc(uint8_t c)
{
    while (!(USART_ISR & ISR_TXE)) {
    }
    USART_TDR = c;
}

void port_uart_flush(void)
{
    while (!(USART_ISR & ISR_TC)) { /* the last byte has left the shift register */
    }
}

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

uint32_t port_time_us(void) { return TIM2_CNT; }

void port_timestamp_pulse(void)
{
    const uint32_t t0 = TIM2_CNT;
    GPIO_BSRR(GPIOA_BASE) = 1u << (TIMESTAMP_PIN + 16u); /* drive low */
    while (TIM2_CNT - t0 <= PORT_TIMESTAMP_PULSE_US) {
    }
    GPIO_BSRR(GPIOA_BASE) = 1u << TIMESTAMP_PIN; /* release: the pull-ups take it high */
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
