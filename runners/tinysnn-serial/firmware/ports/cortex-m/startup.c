/* Minimal Cortex-M startup shared by the bare-metal ports: vector table, .data copy,
 * .bss clear, then main(). Symbols come from the port's linker script. */
#include <stdint.h>

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_top__;

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void Irq0_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*vector_fn)(void);

/* Index 0 is the initial stack pointer; 1 reset; 2 NMI; 3 HardFault; ... 15 SysTick;
 * 16 the first external interrupt (the only one a port may use, as Irq0_Handler). */
__attribute__((section(".vectors"), used)) const vector_fn tsnn_vectors[17] = {
    (vector_fn)(uintptr_t)&__stack_top__,
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler, /* HardFault */
    Default_Handler,   /* MemManage */
    Default_Handler,   /* BusFault */
    Default_Handler,   /* UsageFault */
    0, 0, 0, 0,        /* reserved */
    Default_Handler,   /* SVCall */
    Default_Handler,   /* DebugMonitor */
    0,                 /* reserved */
    Default_Handler,   /* PendSV */
    SysTick_Handler,
    Irq0_Handler,
};

void Reset_Handler(void)
{
    uint32_t *src = &__data_load__;
    uint32_t *dst = &__data_start__;
    while (dst < &__data_end__)
        *dst++ = *src++;
    for (dst = &__bss_start__; dst < &__bss_end__; dst++)
        *dst = 0;
    (void)main();
    for (;;) {
    }
}

void Default_Handler(void)
{
    for (;;) {
    }
}
