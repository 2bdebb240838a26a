/* A broad sample of ARMv7E-M Thumb and FPv4-SP encodings for the decoder check in
 * tests/test_cycles.py (assembled, never run): objdump's mnemonic of each instruction is
 * the oracle for the timing class the plugin gives it. */
    .syntax unified
    .thumb
    .fpu fpv4-sp-d16
    .text
f:
    movs r0, #1
    mov r8, r9
    mov.w r0, #0x1000
    movw r1, #0x1234
    movt r1, #0x5678
    mvn r2, r3
    add r0, r1
    add r0, sp, #8
    add sp, #16
    sub sp, #16
    add.w r0, r1, r2, lsl #3
    addw r0, r1, #0xfff
    adds r0, r1, #7
    adc r0, r1, r2
    sbc.w r0, r1, #5
    rsb r0, r1, #0
    cmp r0, #3
    cmp.w r0, r1, lsr #2
    cmn r0, r1
    tst r0, #1
    teq r0, r1
    and r0, r1
    orr.w r0, r1, #0xff00
    orn r0, r1, r2
    eor r0, r1
    bic r0, r1
    lsl r0, r1, r2
    lsls r0, r1, #4
    asr.w r0, r1, r2
    ror r0, r1, #3
    rrx r0, r1
    clz r0, r1
    rbit r0, r1
    rev r0, r1
    rev16 r0, r1
    revsh r0, r1
    sxtb r0, r1
    uxth.w r0, r1, ror #8
    sxtah r0, r1, r2
    ubfx r0, r1, #2, #5
    sbfx r0, r1, #2, #5
    bfi r0, r1, #3, #4
    bfc r0, #3, #4
    ssat r0, #8, r1
    usat r0, #8, r1
    ssat16 r0, #8, r1
    qadd r0, r1, r2
    qsub16 r0, r1, r2
    sadd16 r0, r1, r2
    uhadd8 r0, r1, r2
    sel r0, r1, r2
    pkhbt r0, r1, r2
    usad8 r0, r1, r2
    usada8 r0, r1, r2, r3
    mul r0, r1, r2
    muls r0, r1
    mla r0, r1, r2, r3
    mls r0, r1, r2, r3
    smull r0, r1, r2, r3
    umull r0, r1, r2, r3
    smlal r0, r1, r2, r3
    umlal r0, r1, r2, r3
    umaal r0, r1, r2, r3
    smlabb r0, r1, r2, r3
    smultb r0, r1, r2
    smlawb r0, r1, r2, r3
    smulwt r0, r1, r2
    smlad r0, r1, r2, r3
    smuadx r0, r1, r2
    smlsd r0, r1, r2, r3
    smusd r0, r1, r2
    smmla r0, r1, r2, r3
    smmul r0, r1, r2
    smmls r0, r1, r2, r3
    smlalbb r0, r1, r2, r3
    smlald r0, r1, r2, r3
    smlsld r0, r1, r2, r3
    sdiv r0, r1, r2
    udiv r0, r1, r2
    ldr r0, [r1]
    ldr r0, [r1, #124]
    ldr r0, [sp, #4]
    ldr r0, [r1, r2]
    ldr.w r0, [r1, #4000]
    ldr r0, [r1, #-4]
    ldr r0, [r1], #4
    ldr r0, [r1, #4]!
    ldr.w r0, [r1, r2, lsl #2]
    ldr r0, =0x12345678
    ldr.w r0, [pc, #8]
    ldrb r0, [r1, #3]
    ldrb.w r0, [r1, r2]
    ldrsb r0, [r1, r2]
    ldrsb.w r0, [r1, #3]
    ldrh r0, [r1, #2]
    ldrsh.w r0, [r1, #-2]
    ldrt r0, [r1, #4]
    ldrd r0, r1, [r2, #8]
    ldrd r0, r1, [r2], #8
    ldrex r0, [r1]
    ldrexb r0, [r1]
    ldrexh r0, [r1]
    pld [r0, #8]
    pld [r0, r1]
    pli [r0, #8]
    str r0, [r1]
    str r0, [r1, r2]
    str r0, [sp, #8]
    str.w r0, [r1, #4000]
    str r0, [r1, #-4]
    str r0, [r1], #4
    str r0, [r1, #4]!
    str.w r0, [r1, r2, lsl #1]
    strb r0, [r1, r2]
    strb.w r0, [r1, #5]
    strh r0, [r1, #2]
    strh.w r0, [r1, r2]
    strt r0, [r1, #4]
    strd r0, r1, [r2, #8]
    strd r0, r1, [r2, #-8]!
    strex r0, r1, [r2]
    strexb r0, r1, [r2]
    strexh r0, r1, [r2]
    ldm r0!, {r1, r2, r3}
    ldm.w r0, {r1, r2, r8}
    ldmdb r0!, {r1, r2}
    stm r0!, {r1, r2}
    stmdb r0!, {r1, r2, r9}
    push {r4, lr}
    push.w {r4-r11, lr}
    pop {r4, r5}
    pop.w {r4-r11}
    ldr pc, [sp], #4
    ldr.w pc, [r0, #4]
    pop {r4, pc}
    pop.w {r4-r11, pc}
    ldmia.w r0, {r1, pc}
    tbb [r0, r1]
    tbh [r0, r1, lsl #1]
    b 1f
1:  b.w 1f
1:  beq 1f
1:  bne.w 1f
1:  cbz r0, 1f
1:  cbnz r0, 1f
1:  bl f
    blx r0
    bx lr
    mov pc, lr
    add pc, r0
    it eq
    moveq r0, #1
    itte ne
    addne r0, #1
    subne r0, #1
    moveq r0, r1
    ittt gt
    ldrgt r0, [r1]
    strgt r0, [r1]
    popgt {r4, pc}
    nop
    nop.w
    yield
    wfi
    wfe
    wfi.w
    sev
    dmb
    dsb
    isb
    clrex
    cpsid i
    cpsie i
    mrs r0, primask
    msr basepri, r0
    bkpt 1
    svc 2
    udf 3
    vadd.f32 s0, s1, s2
    vsub.f32 s0, s1, s2
    vmul.f32 s0, s1, s2
    vnmul.f32 s0, s1, s2
    vmla.f32 s0, s1, s2
    vmls.f32 s0, s1, s2
    vnmla.f32 s0, s1, s2
    vnmls.f32 s0, s1, s2
    vfma.f32 s0, s1, s2
    vfms.f32 s0, s1, s2
    vfnma.f32 s0, s1, s2
    vfnms.f32 s0, s1, s2
    vdiv.f32 s0, s1, s2
    vsqrt.f32 s0, s1
    vabs.f32 s0, s1
    vneg.f32 s0, s1
    vmov.f32 s0, s1
    vmov.f32 s0, #1.0
    vcvt.s32.f32 s0, s1
    vcvt.f32.u32 s0, s1
    vcmp.f32 s0, s1
    vcmpe.f32 s0, #0
    vmov r0, s1
    vmov s1, r0
    vmov r0, r1, d0
    vmov d0, r0, r1
    vmov r0, r1, s0, s1
    vmrs APSR_nzcv, fpscr
    vmrs r0, fpscr
    vmsr fpscr, r0
    vldr s0, [r0, #4]
    vldr d0, [r0]
    vstr s0, [r0, #-4]
    vstr d1, [sp, #8]
    vldmia r0!, {s0-s3}
    vldmia r0, {d0-d1}
    vstmdb r0!, {s0-s7}
    vpush {s16-s31}
    vpop {d8-d15}
    .ltorg
