/* switch.h -- the machine-level stack switch under the greenlets (csrc/core/switch.c).
 *
 *   int pc_stack_switch(intptr_t (*save)(char *sp), void (*restore)(void));
 *
 * Pushes the callee-saved registers of the ABI (and the floating-point control state the ABI says
 * a callee preserves) on the current stack, then calls save(sp) with the resulting stack pointer.
 * save() returns one of:
 *   - a stack delta d (a multiple of 16): the stack pointer moves by d, restore() runs there, and
 *     the registers that the target pushed when it switched away are popped: pc_stack_switch
 *     returns 0 *in the target*, where the target once called it;
 *   - PC_SWITCH_NEW: nothing moves; pc_stack_switch returns 1 in the caller, which goes on to run
 *     a new greenlet on the same stack;
 *   - PC_SWITCH_ERROR: nothing moves; pc_stack_switch returns -1.
 * Both special values are odd, so no real delta can be mistaken for them.
 *
 * One implementation per architecture in switch.c, selected at build time; any other target is
 * an #error there.
 */
#ifndef PYCONC_SWITCH_H
#define PYCONC_SWITCH_H

#include <stdint.h>

#define PC_SWITCH_NEW   ((intptr_t)1)
#define PC_SWITCH_ERROR ((intptr_t)3)

int pc_stack_switch(intptr_t (*save)(char *sp), void (*restore)(void));

#endif /* PYCONC_SWITCH_H */
