"""Processes and start methods for pyconc.multiprocessing.

Process objects are the stdlib's own BaseProcess (so current_process(), parent_process(),
active_children(), names, authkeys, exit codes and the child's bootstrap -- atexit handlers,
flushing, the traceback print and exit code 1 on an exception -- are exactly the stdlib's), started
by pyconc's Popen for "fork": os.fork() (which runs CPython's before/after-fork hooks, so
threads, locks and pyconc's wait lists are sane in the child), and a pidfd as the sentinel, so
join(timeout) waits in C (interruptible, GIL released). "spawn" and "forkserver" use the stdlib's
launchers; pyconc's shared objects cross to those children by name.
"""
import os
import signal

from multiprocessing import process as _mpp


class _ForkPopen:
    method = 'fork'

    def __init__(self, process_obj):
        from multiprocessing import util as _util   # on first use: it imports subprocess
        _util._flush_std_streams()
        self.returncode = None
        self.finalizer = None
        # The child's parent_sentinel: it reads EOF there once this process is gone.
        child_r, parent_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(parent_w)
                code = process_obj._bootstrap(parent_sentinel=child_r)
            finally:
                os._exit(code)
        os.close(child_r)
        self.pid = pid
        self.sentinel = os.pidfd_open(pid)     # readable once the child has exited
        self.finalizer = _util.Finalize(self, _util.close_fds, (self.sentinel, parent_w))

    def duplicate_for_child(self, fd):
        return fd

    def poll(self, flag=os.WNOHANG):
        if self.returncode is None:
            try:
                pid, sts = os.waitpid(self.pid, flag)
            except ChildProcessError:
                return None
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(sts)
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            from .. import _core   # not at import: `import pyconc.multiprocessing` stays cheap
            if _core.wait_fds([self.sentinel], timeout) is None:
                return None
            return self.poll(0)
        return self.returncode

    def _send_signal(self, sig):
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            except OSError:
                if self.wait(timeout=0.1) is None:
                    raise

    def interrupt(self):
        """SIGINT: 3.14's Process.interrupt() calls it."""
        self._send_signal(signal.SIGINT)

    def terminate(self):
        self._send_signal(signal.SIGTERM)

    def kill(self):
        self._send_signal(signal.SIGKILL)

    def close(self):
        if self.finalizer is not None:
            self.finalizer()


class ForkProcess(_mpp.BaseProcess):
    _start_method = 'fork'

    @staticmethod
    def _Popen(process_obj):
        return _ForkPopen(process_obj)


class SpawnProcess(_mpp.BaseProcess):
    _start_method = 'spawn'

    @staticmethod
    def _Popen(process_obj):
        from multiprocessing.popen_spawn_posix import Popen
        return Popen(process_obj)

    @staticmethod
    def _after_fork():
        pass


class ForkServerProcess(_mpp.BaseProcess):
    _start_method = 'forkserver'

    @staticmethod
    def _Popen(process_obj):
        from multiprocessing.popen_forkserver import Popen
        return Popen(process_obj)


_PROCESS_TYPES = {'fork': ForkProcess, 'spawn': SpawnProcess, 'forkserver': ForkServerProcess}


class Process(_mpp.BaseProcess):
    """multiprocessing.Process: started with the default context's start method (the
    running stdlib's default unless set_start_method() chose another)."""
    _start_method = None

    @staticmethod
    def _Popen(process_obj):
        from . import _default_context
        return _PROCESS_TYPES[_default_context.get_start_method()]._Popen(process_obj)

    @staticmethod
    def _after_fork():
        return _mpp.BaseProcess._after_fork()
