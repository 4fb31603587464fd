/* greenlet.h -- the C interface of pyconc's greenlets (greenlet.c) for the rest of the core: the
 * hub parks and resumes greenlets through it without going through Python-level method calls.
 *
 * Every function needs the GIL and works on the calling thread's greenlets. Objects are
 * pyconc greenlets (instances of pyconc.greenlet.greenlet or a subclass); the functions do not
 * check that.
 */
#ifndef PYCONC_GREENLET_H
#define PYCONC_GREENLET_H

#include "pyconc.h"

/* The running greenlet of this thread (borrowed), or NULL if this thread has not used greenlets
 * yet (nothing is created). */
PyObject *pc_greenlet_current_or_null(void);

/* The running greenlet of this thread (borrowed), creating the thread's main greenlet on first
 * use. NULL with an exception set. */
PyObject *pc_greenlet_current(pc_state *st);

/* This thread's main greenlet (borrowed); pc_greenlet_current() must have been called. */
PyObject *pc_greenlet_main(void);

/* A new, not started greenlet running run(*args, **kwargs) once switched to, with the given
 * parent (NULL: the current greenlet). New reference, or NULL with an exception. */
PyObject *pc_greenlet_new(pc_state *st, PyTypeObject *type, PyObject *run, PyObject *parent);

/* Switches to target, passing args (a tuple, stolen) and kwargs (a dict or NULL, stolen), as
 * target.switch(*args, **kwargs). Returns what this greenlet's switch returns when it is switched
 * back to (new reference), or NULL with the exception raised in it. */
PyObject *pc_greenlet_switch(PyObject *target, PyObject *args, PyObject *kwargs);

/* Raises exc (an exception instance, borrowed) in target at its switch point and switches to it,
 * as target.throw(exc). Returns as pc_greenlet_switch. */
PyObject *pc_greenlet_throw(PyObject *target, PyObject *exc);

/* 1 if g has started and not finished (it can be switched back to), else 0. */
int pc_greenlet_is_active(PyObject *g);

/* 1 if g has started and finished. */
int pc_greenlet_is_dead(PyObject *g);

/* 1 if g has started. */
int pc_greenlet_is_started(PyObject *g);

/* g's parent (borrowed, may be NULL for a main greenlet). */
PyObject *pc_greenlet_parent(PyObject *g);

/* Sets the parent of a greenlet that has not started and was just created in this thread (no
 * cycle or thread check is needed). */
void pc_greenlet_set_new_parent(PyObject *g, PyObject *parent);

#endif /* PYCONC_GREENLET_H */
