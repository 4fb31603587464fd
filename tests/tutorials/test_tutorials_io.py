"""The seeds' gevent, select and selectors network programs (pyconc/tour/programs/t25-t31 and
their clients c29-c31), imports changed to pyconc only, each asserting what the lecture notes
say it shows. Every test runs twice with the same body: on the baseline (the tour's twin of the
program, importing gevent / the stdlib: the oracle that proves the test right) and on pyconc.

The crawlers fetch pages of a local server that answers each after PAGE_DELAY seconds; the
server's log tells fetches in parallel (all requests arrived before the first answer, the whole
fetch within two delays) from fetches in turn (each request after the previous answer). The
server programs are driven by their seed clients, several at once, one line at a time round
robin: a server that could not hold several connections at once would leave a client without an
answer (the tour then says so in that client's stderr)."""
import re

import pytest

from pyconc.tour import PAGE_DELAY, PROGRAMS, missing_needs, run_program
from pyconc.tour.servers import page_body

pytestmark = pytest.mark.timeout(120)

VARIANTS = pytest.mark.parametrize("variant", ["stdlib", "pyconc"], ids=["baseline", "pyconc"])


def run(name, variant, **kw):
    need = missing_needs(PROGRAMS / name)
    if need:
        pytest.skip(f"{name} imports {need}, which is not installed (pip install -e '.[test]')")
    r = run_program(PROGRAMS / name, variant, **kw)
    assert r.returncode == 0 or r.stopped, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return r


def in_parallel(log, n):
    """The n requests were in flight together, and the whole fetch took under two delays."""
    assert len(log) == n, log
    first_arrival = min(a for _, a, _ in log)
    last_arrival = max(a for _, a, _ in log)
    first_answer = min(d for _, _, d in log)
    last_answer = max(d for _, _, d in log)
    assert last_arrival < first_answer, f"a request came after an answer: {log}"
    assert last_answer - first_arrival < 2 * PAGE_DELAY, log


def in_turn(log, n):
    assert len(log) == n, log
    ordered = sorted(log, key=lambda e: e[1])
    for prev, nxt in zip(ordered, ordered[1:]):
        assert nxt[1] >= prev[2], f"requests overlapped: {log}"
    assert ordered[-1][2] - ordered[0][1] >= n * PAGE_DELAY


def cost_time(stdout):
    m = re.search(r"cost time:([0-9.]+)", stdout)
    assert m, stdout
    return float(m.group(1))


@VARIANTS
def test_requests_crawler_fetches_three_pages_at_once(variant):
    r = run("t25_gevent_requests_crawler.py", variant)
    for i in (1, 2, 3):
        assert re.search(rf"^http://127\.0\.0\.1:\d+/page{i} <html>.*tour page /page{i}</p>",
                         r.stdout, re.M), r.stdout
    assert "爬取错误" not in r.stdout
    in_parallel(r.server_log, 3)


@VARIANTS
def test_urlopen_crawler_without_patching_fetches_in_turn(variant):
    # the notes' first crawler: without monkey.patch_all() urllib blocks the hub's thread, so
    # each greenlet's page is fetched after the previous one's (18.9 s in the notes)
    r = run("t26_gevent_urlopen_unpatched.py", variant)
    lines = r.stdout.splitlines()
    size = len(page_body("/page1"))
    got = re.findall(rf"^{size}个字节被下载,从网页https://127\.0\.0\.1:\d+/page(\d)。$", r.stdout,
                     re.M)
    assert got == ["1", "2", "3"], r.stdout   # in spawn order
    # header, download, header, download...: each greenlet runs to its end before the next
    assert [("下载" in line) for line in lines[:6]] == [False, True] * 3, r.stdout
    in_turn(r.server_log, 3)
    assert cost_time(r.stdout) >= 3 * PAGE_DELAY
    assert r.files == {"alex.html": size}


@VARIANTS
def test_urlopen_crawler_patched_fetches_three_pages_at_once(variant):
    # the notes' second crawler: after monkey.patch_all() the three fetches overlap (1.77 s)
    r = run("t27_gevent_urlopen_patched.py", variant)
    lines = r.stdout.splitlines()
    # the three greenlets each print their header before the first page arrives
    assert all("并发的爬取未网页" in line for line in lines[:3]), r.stdout
    size = len(page_body("/page1"))
    got = sorted(re.findall(rf"^{size}个字节被下载,从网页https://127\.0\.0\.1:\d+/page(\d)。$",
                            r.stdout, re.M))
    assert got == ["1", "2", "3"], r.stdout
    in_parallel(r.server_log, 3)
    assert cost_time(r.stdout) < 2 * PAGE_DELAY
    assert r.files == {"alex.html": size}


@VARIANTS
def test_image_downloader_writes_both_files(variant):
    r = run("t28_gevent_image_downloader.py", variant)
    assert len(re.findall(r"^<http\.client\.HTTPResponse object at 0x[0-9a-f]+>$", r.stdout,
                          re.M)) == 2, r.stdout
    assert r.files == {"1.jpg": len(page_body("/page1")), "2.jpg": len(page_body("/page2"))}
    in_parallel(r.server_log, 2)


def assert_clients(r, expected_stdout, count):
    assert r.clients is not None, f"the server never listened: {r.stderr}"
    assert len(r.clients) == count
    for c in r.clients:
        # the seed client loops on input() until its input ends: EOFError, as on Ctrl-D
        assert "[tour] no answer" not in c.stderr, c.stderr
        assert c.stderr.rstrip().endswith("EOFError: EOF when reading a line"), c.stderr
        assert c.stdout == expected_stdout


@VARIANTS
def test_gevent_server_greenlet_per_connection(variant):
    r = run("t29_gevent_tcp_server.py", variant)
    assert r.stopped, "the server runs until the tour stops it"
    assert_clients(r, ">>:Received b'hello'\n>>:Received b'world'\n>>:Received b'again'\n>>:",
                   3)
    out = r.stdout
    for word in ("hello", "world", "again"):
        assert out.count(f"recv: b'{word}'") == 3, out
    # each client's end: recv gives b'', the server echoes b'' and shuts down its side, then the
    # next send fails with EPIPE, which the handler prints (SIGPIPE kills nothing) and closes
    assert out.count("recv: b''") == 6, out
    assert out.count("[Errno 32] Broken pipe") == 3, out


@VARIANTS
def test_select_server_queue_per_connection(variant):
    r = run("t30_select_queue_server.py", variant)
    assert r.stopped
    (client,) = r.clients
    assert client.returncode == 0, client.stderr
    # both threads' b'hello' answered upper-cased on the loop's next round (print() writes the
    # line and its end separately, so the two threads' lines may interleave)
    assert client.stdout.replace("\n", "") == "b'HELLO'b'HELLO'", client.stdout
    assert client.stdout.count("\n") == 2
    assert r.stdout.startswith("[]\n"), r.stdout[:200]   # print(exceptional): empty each round
    assert set(r.stdout.splitlines()) == {"[]"}, set(r.stdout.splitlines())


@VARIANTS
def test_selectors_echo_server(variant):
    r = run("t31_selectors_echo_server.py", variant)
    assert r.stopped
    assert_clients(r, ">>: hello\n>>: world\n>>: again\n>>: ", 3)
    out = r.stdout
    # the stdlib's socket repr, or pyconc.gevent.socket's (gevent's layout) where the program
    # imports it: '<socket.socket fd=...>' / '<pyconc.gevent.socket.socket at 0x... object, fd=...>'
    sock = r"<(?:socket|pyconc\.gevent\.socket)\.socket [^>]*fd=\d+[^>]*>"
    assert len(re.findall(rf"^accepted {sock} from \('127\.0\.0\.1', \d+\)$", out,
                          re.M)) == 3, out
    for word in ("hello", "world", "again"):
        assert len(re.findall(rf"^echoing b'{word}' to {sock}$", out, re.M)) == 3, out
    assert len(re.findall(rf"^closing {sock}$", out, re.M)) == 3, out


# -- the gevent sleep programs: gevent.sleep(), and time.sleep() after monkey.patch_all() ---

@VARIANTS
def test_three_greenlets_sleep_at_once(variant):
    r = run("t32_gevent_three_sleeps.py", variant)
    assert r.stdout.splitlines() == ["hello 1", "hello 2", "hello 3", "hello 2 again",
                                     "hellw 1 again", "hello 3 again"]


@VARIANTS
def test_getcurrent_names_each_greenlet(variant):
    r = run("t33_gevent_getcurrent.py", variant)
    lines = r.stdout.splitlines()
    assert lines[:3] == ["1", "2", "3"]
    rows = [re.fullmatch(r"<Greenlet at 0x[0-9a-f]+: (f[123])\(5\)> (\d)", line)
            for line in lines[3:]]
    assert all(rows), lines
    # one round of f1 f2 f3 per sleep
    assert [(m.group(1), m.group(2)) for m in rows] == \
        [(f, str(i)) for i in range(5) for f in ("f1", "f2", "f3")]


FUN_INNER_OUTER = ["In the function fun!!!", "", "Running in the function of inner!!!", "",
                   "周末去搞基把,带上alex", ""]


@VARIANTS
def test_fun_inner_outer_switch_at_each_sleep(variant):
    r = run("t34_gevent_fun_inner_outer.py", variant)
    assert r.stdout.splitlines() == FUN_INNER_OUTER + [
        "不好吧,alex是人妖,不好那口,还是带上配齐把!!!",
        "33[32mRunning back to the function of inner33[0m", "",
        "33[31mCome back to the function of fun again!33[0m", ""]


@VARIANTS
def test_patched_time_sleep_switches(variant):
    r = run("t35_gevent_monkey_time_sleep.py", variant)
    lines = r.stdout.splitlines()
    assert lines[:-1] == FUN_INNER_OUTER + [
        "不好吧,alex是人妖,不好那口,还是带上wupeiqi!!!",
        "33[32mRunning back to the function of inner33[0m", "",
        "33[31mCome back to the function of fun again!33[0m", ""]
    spent = float(re.fullmatch(r"花费时间:([0-9.]+)", lines[-1]).group(1))
    # the longest sleep (0.8 s), not the sum (1.4 s) that a blocking time.sleep would take
    assert 0.8 <= spent < 1.2


@VARIANTS
def test_patched_time_sleep_interleaves_two_workers(variant):
    r = run("t36_gevent_monkey_random_sleep.py", variant)
    lines = r.stdout.splitlines()
    assert len(lines) == 20
    for name in ("work1", "work2"):
        assert [line for line in lines if line.startswith(name)] == \
            [f"{name} {i}" for i in range(10)]
    # both start before either sleeps a second time: a blocking sleep would print all of
    # work1 before work2
    assert lines[:2] == ["work1 0", "work2 0"]
