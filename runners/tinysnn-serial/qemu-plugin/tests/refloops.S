/* Reference loops for the cycle-estimate check (tests/test_cycles.py). Each function is called
 * once or twice from reset with r0 = N iterations; its cycle count, entry to return (the BL
 * excluded, the return's refill included), is derived by hand in the comments from the
 * Cortex-M3/M4 TRM tables as docs/boards.md reads them:
 *   ALU 1, LDR 2 (1 after a single load unless it needs the loaded register), STR #imm 1,
 *   nothing pipelined after a store, +1 for an address computed by the instruction just
 *   before, LDM/STM/PUSH/POP 1+N (POP {pc} +P), MUL 1, MLA 2/1, UMULL 5/1 (M3 worst case /
 *   M4), UDIV 12 (worst case), B<cond> 1 (+P taken), IT folded onto a 16-bit instruction 0;
 *   P = 1 direct, 2 register (BX LR), 3 loaded PC, +1 (at most 3) for a 32-bit target that
 *   straddles two words.
 * Every return lands on a 16-bit NOP (P of BX LR = 2). Functions start on 8-byte boundaries
 * so that the 64-bit flash lines of the wait-state check are known. Build with -DWITH_DSP for
 * the Cortex-M4 (mps2-an386). Ends with a semihosting exit. */
    .syntax unified
    .thumb

    .section .vectors, "a"
    .word __stack_top
    .word reset               @ a Thumb function: the linker sets bit 0
    .word 0, 0, 0, 0, 0, 0, 0, 0, 0   @ NMI .. reserved (exceptions 2-10: not taken here)
    .word SVCall_Handler      @ exception 11

    .text
    .thumb_func
    .global reset
reset:
    ldr r1, =buf
    ldr r2, =self
    str r2, [r1, #4]          @ buf[1] = &buf[0] (self): the pointer the load loop chases
    movs r0, #1
    bl alu_loop               @ N = 1
    nop
    movs r0, #100
    bl alu_loop               @ N = 100
    nop
    movs r0, #100
    ldr r1, =buf
    bl load_loop
    nop
    movs r0, #100
    bl mul_loop
    nop
    movs r0, #100
    bl branch_loop
    nop
    movs r0, #25
    ldr r1, =src
    ldr r2, =dst
    bl copy_loop
    nop
    movs r0, #100
    bl it_loop
    nop
    movs r0, #100
    ldr r1, =table
    bl flash_load_loop
    nop
#ifdef WITH_DSP
    movs r0, #100
    bl dsp_loop
    nop
#endif
    bl svc_call
    nop
    movs r0, #0x18            @ SYS_EXIT
    ldr r1, =0x20026          @ ADP_Stopped_ApplicationExit
    bkpt 0xab
1:  b 1b
    .ltorg

/* ALU(N) = movs 1 + N x (adds eors lsls subs bne: 5) + (N-1) taken x P 1 + bx lr 1+2
 *        = 6N + 3.  Flash lines (8-byte aligned): entry block and each loop block 2, the exit
 *        block shares the loop's last line: fetch stalls = 2N x ws. */
    .balign 8
    .thumb_func
    .global alu_loop
alu_loop:
    movs r1, #0
1:  adds r1, r1, #3
    eors r1, r0
    lsls r2, r1, #2
    subs r0, #1
    bne 1b
    bx lr

/* LOAD(N) = N x 14 + (N-1) x 1 + 3 = 15N + 2, per iteration:
 *   ldr [r1] 2 (first of its block), ldr [r1,#4] 1 (pipelined), ldr [r3] 2 (needs the
 *   loaded r3), str [r1,#8] 1, ldr [r1,#12] 2 (after a store), adds r3 1, ldr [r3] 3
 *   (address from the add just before), subs 1, bne 1. */
    .balign 8
    .thumb_func
    .global load_loop
load_loop:
1:  ldr r2, [r1]
    ldr r3, [r1, #4]
    ldr r3, [r3]
    str r2, [r1, #8]
    ldr r2, [r1, #12]
    adds r3, r1, #4
    ldr r2, [r3]
    subs r0, #1
    bne 1b
    bx lr

/* MUL(N) = 2 + N x (muls 1 + mla 2|1 + umull 5|1 + udiv 12 + subs 1 + bne 1) + (N-1) + 3
 *        = 23N + 4 on the M3, 18N + 4 on the M4. */
    .balign 8
    .thumb_func
    .global mul_loop
mul_loop:
    movs r1, #3
    movs r2, #5
1:  muls r2, r1, r2
    mla r3, r1, r2, r3
    umull r3, r12, r1, r2
    udiv r3, r2, r1
    subs r0, #1
    bne 1b
    bx lr

/* BRANCH(N) = (N-1) x (subs 1 + beq 1 + b.w 1+2 + add.w 1 + b 1+1 = 8)
 *           + last: subs 1 + beq taken 1+1 + bx lr 1+2 = 8N - 2.
 * b.w's target is a 32-bit instruction at an address = 2 mod 4 (P = 2; test_cycles checks
 * the address). */
    .balign 8
    .thumb_func
    .global branch_loop
branch_loop:
1:  subs r0, #1
    beq 2f
    b.w 3f
    nop
    .global br_target
br_target:
3:  add.w r1, r1, #1
    b 1b
2:  bx lr

/* COPY(N) = push {r4-r7,lr} 1+5 + N x (ldmia 1+4 + stmia 1+4 + subs 1 + bne 1) + (N-1)
 *         + pop {r4-r7,pc} 1+5+3 = 13N + 14 (N blocks of 16 bytes, RAM to RAM). */
    .balign 8
    .thumb_func
    .global copy_loop
copy_loop:
    push {r4-r7, lr}
1:  ldmia r1!, {r3-r6}
    stmia r2!, {r3-r6}
    subs r0, #1
    bne 1b
    pop {r4-r7, pc}

/* IT(N) = movs 1 + N x (cmp 1 + it 0 (folded) + addge 1 + subs 1 + bne 1) + (N-1) + 3
 *       = 5N + 3. */
    .balign 8
    .thumb_func
    .global it_loop
it_loop:
    movs r1, #0
1:  cmp r0, #5
    it ge
    addge r1, #1
    subs r0, #1
    bne 1b
    bx lr

/* FLASH_LOAD(N) = movs 1 + N x (ldr 2 + ldr 1 + ldm.w 1+2 + ldr 2 (after an LDM) + subs 1
 *               + bne 1) + (N-1) + 3 = 11N + 3; from the flash table: data stalls
 *               4 x ws per iteration (ldr, ldr, one for the LDM's two words of one 64-bit
 *               line, ldr of the next line); fetch lines: entry and loop blocks 2 each (the
 *               LDM straddles two lines), exit block 1: (2N + 1) x ws. */
    .balign 8
    .thumb_func
    .global flash_load_loop
flash_load_loop:
    movs r2, #0
1:  ldr r2, [r1]
    ldr r3, [r1, #4]
    ldmia.w r1, {r2, r3}
    ldr r3, [r1, #8]
    subs r0, #1
    bne 1b
    bx lr

#ifdef WITH_DSP
/* DSP(N) = 2 + N x (smlabb 1 + smlad 1 + umlal 1 + uadd8 1 + subs 1 + bne 1) + (N-1) + 3
 *        = 7N + 4 (Cortex-M4). */
    .balign 8
    .thumb_func
    .global dsp_loop
dsp_loop:
    movs r1, #3
    movs r2, #5
1:  smlabb r3, r1, r2, r3
    smlad r3, r1, r2, r3
    umlal r3, r12, r1, r2
    uadd8 r3, r1, r2
    subs r0, #1
    bne 1b
    bx lr
#endif

/* SVC: an exception taken inside a timed call, deterministically. The call's own count is
 * movs 1 + svc 1 + adds 1 + bx lr 1+2 = 6 cycles, 4 instructions; the handler's, reported apart
 * when the plugin is given its range (isr=), is exception entry 12 + movs 1 + bx lr 1 + the
 * return's refill 2 = 16 cycles, 2 instructions. */
    .balign 8
    .thumb_func
    .global svc_call
svc_call:
    movs r1, #1
    svc #0
    adds r1, #2
    bx lr

    .balign 8
    .thumb_func
    .global SVCall_Handler
    .type SVCall_Handler, %function
SVCall_Handler:
    movs r2, #5
    bx lr
    .size SVCall_Handler, . - SVCall_Handler  @ the plugin learns the handler's range from it

    .section .rodata
    .balign 8
table:
    .word 1, 2, 3, 4

    .bss
    .balign 8
buf:
self:
    .space 16
src:
    .space 400
dst:
    .space 400
