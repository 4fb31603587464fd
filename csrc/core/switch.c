/* switch.c -- pc_stack_switch() for each supported architecture (see switch.h for the contract).
 *
 * Written as file-scope assembly in a C file so that the ordinary C build compiles it; each
 * version is a plain function of the platform ABI, so the C caller spills its caller-saved
 * registers as for any call, and this routine saves everything the ABI makes callee-saved.
 *
 * x86-64 System V: rbp, rbx, r12-r15, the MXCSR control/status register and the x87 control
 *   word. rsp stays 16-byte aligned at every call.
 * aarch64 AAPCS64: x19-x28, x29 (frame pointer), x30 (link register), d8-d15; sp 16-aligned;
 *   x18 (platform register) is not touched.
 */
#include "switch.h"

#if defined(__x86_64__) && defined(__ELF__)

__asm__(
    "    .text\n"
    "    .globl pc_stack_switch\n"
    "    .hidden pc_stack_switch\n"
    "    .type pc_stack_switch, @function\n"
    "    .p2align 4\n"
    "pc_stack_switch:\n"
    "    .cfi_startproc\n"
#if defined(__CET__)
    "    endbr64\n"
#endif
    "    pushq %rbp\n"
    "    .cfi_adjust_cfa_offset 8\n"
    "    .cfi_rel_offset %rbp, 0\n"
    "    pushq %rbx\n"
    "    .cfi_adjust_cfa_offset 8\n"
    "    .cfi_rel_offset %rbx, 0\n"
    "    pushq %r12\n"
    "    .cfi_adjust_cfa_offset 8\n"
    "    .cfi_rel_offset %r12, 0\n"
    "    pushq %r13\n"
    "    .cfi_adjust_cfa_offset 8\n"
    "    .cfi_rel_offset %r13, 0\n"
    "    pushq %r14\n"
    "    .cfi_adjust_cfa_offset 8\n"
    "    .cfi_rel_offset %r14, 0\n"
    "    pushq %r15\n"
    "    .cfi_adjust_cfa_offset 8\n"
    "    .cfi_rel_offset %r15, 0\n"
    "    subq $8, %rsp\n"                 /* [rsp] = MXCSR, [rsp+4] = x87 control word */
    "    .cfi_adjust_cfa_offset 8\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rdi, %rax\n"               /* save */
    "    movq %rsi, %r12\n"               /* restore: callee-saved, survives the calls */
    "    movq %rsp, %rdi\n"
    "    call *%rax\n"                    /* rax = save(sp) */
    "    cmpq $1, %rax\n"
    "    je 1f\n"
    "    cmpq $3, %rax\n"
    "    je 2f\n"
    "    addq %rax, %rsp\n"               /* onto the target's stack */
    "    call *%r12\n"                    /* restore() */
    "    xorl %eax, %eax\n"
    "    jmp 3f\n"
    "1:  movl $1, %eax\n"
    "    jmp 3f\n"
    "2:  movl $-1, %eax\n"
    "3:  ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "    addq $8, %rsp\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    popq %r15\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    popq %r14\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    popq %r13\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    popq %r12\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    popq %rbx\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    popq %rbp\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    ret\n"
    "    .cfi_endproc\n"
    "    .size pc_stack_switch, .-pc_stack_switch\n"
    "    .section .note.GNU-stack,\"\",@progbits\n"
    "    .text\n"
);

#elif defined(__aarch64__) && defined(__ELF__)

__asm__(
    "    .text\n"
    "    .globl pc_stack_switch\n"
    "    .hidden pc_stack_switch\n"
    "    .type pc_stack_switch, %function\n"
    "    .p2align 4\n"
    "pc_stack_switch:\n"
    "    .cfi_startproc\n"
#if defined(__ARM_FEATURE_BTI_DEFAULT)
    "    bti c\n"
#endif
    "    stp x29, x30, [sp, #-176]!\n"    /* 12 x-registers and 8 d-registers, 16-aligned */
    "    .cfi_def_cfa_offset 176\n"
    "    .cfi_offset x29, -176\n"
    "    .cfi_offset x30, -168\n"
    "    mov x29, sp\n"
    "    stp x19, x20, [sp, #16]\n"
    "    stp x21, x22, [sp, #32]\n"
    "    stp x23, x24, [sp, #48]\n"
    "    stp x25, x26, [sp, #64]\n"
    "    stp x27, x28, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    mov x19, x1\n"                   /* restore: callee-saved, survives the calls */
    "    mov x9, x0\n"                    /* save */
    "    mov x0, sp\n"
    "    blr x9\n"                        /* x0 = save(sp) */
    "    cmp x0, #1\n"
    "    b.eq 1f\n"
    "    cmp x0, #3\n"
    "    b.eq 2f\n"
    "    add sp, sp, x0\n"                /* onto the target's stack */
    "    blr x19\n"                       /* restore() */
    "    mov w0, #0\n"
    "    b 3f\n"
    "1:  mov w0, #1\n"
    "    b 3f\n"
    "2:  mov w0, #-1\n"
    "3:  ldp d14, d15, [sp, #144]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp x27, x28, [sp, #80]\n"
    "    ldp x25, x26, [sp, #64]\n"
    "    ldp x23, x24, [sp, #48]\n"
    "    ldp x21, x22, [sp, #32]\n"
    "    ldp x19, x20, [sp, #16]\n"
    "    ldp x29, x30, [sp], #176\n"
    "    .cfi_def_cfa_offset 0\n"
    "    ret\n"
    "    .cfi_endproc\n"
    "    .size pc_stack_switch, .-pc_stack_switch\n"
    "    .section .note.GNU-stack,\"\",%progbits\n"
    "    .text\n"
);

#else
#error "pyconc: no stack switch for this architecture (supported: x86-64 and aarch64, ELF)"
#endif
