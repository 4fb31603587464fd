"""pyconc.gevent.util -- gevent.util's wrap_errors.

gevent.util's run-info and spawn-tree formatting (format_run_info, print_run_info, GreenletTree,
assert_switches) describe gevent's own loop and greenlet internals and are not provided."""
import functools

__all__ = ['wrap_errors']


class wrap_errors:
    """wrap_errors(errors, func): a callable that calls func and returns, instead of raising,
    an exception that is an instance of errors (a class or a tuple of classes). Keeps func's
    str(), repr() and attributes."""

    def __init__(self, errors, func):
        self.__errors = errors
        self.__func = func
        functools.update_wrapper(self, func)

    def __call__(self, *args, **kwargs):
        try:
            return self.__func(*args, **kwargs)
        except self.__errors as ex:
            return ex

    def __str__(self):
        return str(self.__func)

    def __repr__(self):
        return repr(self.__func)

    def __getattr__(self, name):
        return getattr(self.__func, name)
