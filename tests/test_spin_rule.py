"""The CPU count behind the spin rule (issue 10): a waiter spins only when its thread may use two
CPUs or more, counting the affinity mask and the cgroup CPU quota, not the machine's CPUs. Not
timed: these check what the rule sees (pyconc._core._spin_info), each in a fresh subprocess."""
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from tests.support import run_python

pytestmark = pytest.mark.timeout(60)


def info(code="", env=None, **kw):
    r = run_python(textwrap.dedent(code) + "\nfrom pyconc import _core\nprint(_core._spin_info())\n",
                   env=env, **kw)
    assert r.returncode == 0, r.stderr
    return eval(r.stdout.strip().splitlines()[-1])


def test_unpinned_counts_the_affinity_mask():
    got = info()
    assert got["affinity_cpus"] == len(os.sched_getaffinity(0))
    assert got["usable_cpus"] <= got["affinity_cpus"]
    assert got["spin_max_ns"] == 30000


def test_pinned_to_one_cpu_nobody_spins():
    cpu = min(os.sched_getaffinity(0))
    got = info(f"import os; os.sched_setaffinity(0, {{{cpu}}})")
    assert got["usable_cpus"] == 1 and got["max_spinners"] == 0


def test_pinning_after_start_is_seen_and_threads_inherit():
    """The mask is re-read (every few hundred parks, and when asked): a process that pins itself
    after pyconc was imported and used, and the threads it starts afterwards, see one CPU."""
    cpu = min(os.sched_getaffinity(0))
    r = run_python(f"""
        import os
        from pyconc import _core, threading
        before = _core._spin_info()["usable_cpus"]
        os.sched_setaffinity(0, {{{cpu}}})
        out = []
        t = threading.Thread(target=lambda: out.append(_core._spin_info()))
        t.start(); t.join()
        print(before, _core._spin_info()["max_spinners"], out[0]["max_spinners"])
    """)
    assert r.returncode == 0, r.stderr
    before, main_may, thread_may = r.stdout.split()
    assert int(before) == min(len(os.sched_getaffinity(0)), int(before))
    assert main_may == "0" and thread_may == "0"


def test_a_forked_child_reads_its_own_mask():
    cpu = min(os.sched_getaffinity(0))
    r = run_python(f"""
        import os
        from pyconc import _core
        _core._spin_info()
        pid = os.fork()
        if pid == 0:
            os.sched_setaffinity(0, {{{cpu}}})
            os._exit(0 if _core._spin_info()["max_spinners"] == 0 else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


def test_spin_ns_zero_turns_spinning_off():
    got = info(env=dict(os.environ, PYCONC_SPIN_NS="0"))
    assert got["spin_max_ns"] == 0 and got["max_spinners"] == 0


def _cgroup_dirs():
    """A writable cgroup directory in which a CPU quota can be set: (v1 cpu dir) or (v2 dir)."""
    for base, kind in (("/sys/fs/cgroup/cpu", "v1"), ("/sys/fs/cgroup/cpu,cpuacct", "v1"),
                       ("/sys/fs/cgroup", "v2")):
        if kind == "v1" and os.path.exists(os.path.join(base, "cpu.cfs_quota_us")):
            return base, kind
        if kind == "v2" and os.path.exists(os.path.join(base, "cgroup.subtree_control")):
            try:
                with open(os.path.join(base, "cgroup.subtree_control")) as f:
                    if "cpu" in f.read().split():
                        return base, kind
            except OSError:
                pass
    return None, None


def test_cgroup_quota_of_half_a_cpu_means_nobody_spins():
    base, kind = _cgroup_dirs()
    if base is None:
        pytest.skip("no cgroup CPU controller (v1 cpu or v2 cpu.max) is mounted here")
    path = os.path.join(base, "pyconc-test-" + uuid.uuid4().hex[:8])
    try:
        os.mkdir(path)
    except OSError as e:
        pytest.skip(f"cannot create a cgroup here ({e}): setting a CPU quota needs a writable "
                    "cgroup hierarchy")
    try:
        if kind == "v1":
            with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
                f.write("100000")
            with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
                f.write("50000")
        else:
            with open(os.path.join(path, "cpu.max"), "w") as f:
                f.write("50000 100000")
        code = ("from pyconc import _core; print(_core._spin_info())")
        # the child moves itself into the cgroup before it imports pyconc
        script = (f"import os\nopen({os.path.join(path, 'cgroup.procs')!r}, 'w')"
                  f".write(str(os.getpid()))\n" + code)
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        got = eval(r.stdout.strip())
        assert got["cgroup_cpus"] == 1
        assert got["usable_cpus"] == 1 and got["max_spinners"] == 0
    finally:
        os.rmdir(path)
