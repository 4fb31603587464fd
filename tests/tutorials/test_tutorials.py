"""The seeds' threading and queue programs (pyconc/tour/programs/), imports changed to pyconc only, each
asserting what the lecture notes say it shows. They run as separate interpreters, as a reader
runs them."""
import re

import pytest

from pyconc.tour import PROGRAMS, run_program

pytestmark = pytest.mark.timeout(120)


def run(name, **kw):
    r = run_program(PROGRAMS / name, **kw)
    assert r.returncode == 0 or r.stopped, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_two_threads_run_concurrently():
    r = run("t01_two_threads.py")
    assert sorted(re.findall(r"t[12]", r.stdout)) == ["t1", "t2"]
    assert r.stdout.count("talk") == 2
    # both sleep 0.2 s at the same time: together well under the 0.4 s of running them in turn
    assert r.wall < 0.4 + 0.35


def test_mythread_subclass_runs_its_run():
    r = run("t02_mythread_subclass.py")
    assert sorted(re.findall(r"t[12]", r.stdout)) == ["t1", "t2"]


def test_fifty_threads_timing():
    r = run("t03_fifty_threads_timing.py")
    # print() writes its parts separately, so 50 threads interleave them: count the parts
    assert r.stdout.count("talk") == 50
    assert r.stdout.count("is done") == 50  # non-daemon: all finish
    m = re.search(r"running time is : ([0-9.]+)", r.stdout)
    assert m and 0.19 <= float(m.group(1)) < 2.0  # 50 sleeps of 0.2 s overlap
    assert "The mian process....." in r.stdout


def test_mutex_two_threads_million_increments():
    r = run("t04_mutex_increments.py")
    finals = re.findall(r"g_num=(\d+)", r.stdout)
    assert len(finals) == 3
    assert "in main g_num=2000000" in r.stdout  # the lock makes every increment count
    assert max(int(x) for x in finals[:2]) == 2000000


def test_deadlock_demo_deadlocks():
    r = run("t05_deadlock.py", limit=1.5)
    assert r.stopped, "the two threads should still be deadlocked"
    assert "----do1---up----" in r.stdout and "----do2---up----" in r.stdout
    assert "down" not in r.stdout


def test_semaphore_room_of_five():
    r = run("t06_semaphore_room.py")
    events = re.findall(r"第(\d+)个客人(进入|离开)屋子", r.stdout)
    assert len(events) == 40
    inside, most = set(), 0
    for guest, what in events:
        if what == "进入":
            inside.add(guest)
            most = max(most, len(inside))
        else:
            inside.remove(guest)
    # printed after acquire, before release: never more than five in the room
    assert most <= 5
    assert inside == set()


def test_traffic_light_event():
    r = run("t07_traffic_light.py", limit=2.5)
    out = r.stdout
    assert "light red" in out and "light green" in out
    first_red = out.index("light red")
    wait = out.find("[哈士奇] is wait", first_red)
    assert wait != -1, "the car waits at the red light"
    assert out.find("[哈士奇] is run", wait) != -1, "and drives on when it turns green"


def test_conn_mysql_event_wait_half_second():
    r = run("t08_conn_mysql.py")
    tries = re.findall(r"第(\d)个人正在尝试第(\d)次连接!", r.stdout)
    ok = re.findall(r"第(\d)个人连接成功", r.stdout)
    timeouts = r.stdout.count("连接超时")
    assert len(ok) + timeouts == 10  # every user ends one way or the other
    assert all(1 <= int(n) <= 3 for _, n in tries)
    # maintenance lasts 1 or 2 s; users give up after three 0.5 s waits
    assert (len(ok) == 10 and timeouts == 0) or (len(ok) == 0 and timeouts == 10)


def test_enumerate_until_only_main_left():
    r = run("t09_enumerate.py")
    lists = [line for line in r.stdout.splitlines() if line.startswith("[")]
    assert "Thread-1 (test1)" in lists[0] and "Thread-2 (test2)" in lists[0]
    assert "MainThread" in lists[0]
    assert any("test1" not in line and "test2" in line for line in lists), \
        "test1 ends first, test2 is still listed"
    assert r.stdout.count("***test2***") == 10


# -- queue ------------------------------------------------------------------------------------

def test_baozi_producer_two_consumers():
    r = run("t10_baozi_producer_consumer.py", limit=1.5)
    made = re.findall(r"一枝花生产第(\d+)包子", r.stdout)
    eaten = r.stdout.count("作死的吃")
    assert len(made) >= 5
    assert [int(x) for x in made] == list(range(1, len(made) + 1))
    assert "北门吹雪" in r.stdout and "西门吹风" in r.stdout  # both consumers eat
    # each baozi is eaten once: never more eaten than made
    assert len(made) - 1 <= eaten <= len(made)


def test_queue_kinds():
    r = run("t11_queue_kinds.py")
    lines = r.stdout.splitlines()
    assert lines[0] == "Queue qsize 3 full True"
    assert lines[1] == "Queue [0, 1, 2]"
    assert lines[2] == "LifoQueue [2, 1, 0]"
    assert lines[3] == "PriorityQueue [(1, 'a'), (2, 'b'), (3, 'c')]"
    assert lines[4] == "get_nowait: queue.Empty"
    assert lines[5] == "get(timeout=1): queue.Empty after 1.0 s"


# -- greenlet ---------------------------------------------------------------------------------

def test_greenlet_manual_switch_prints_1_3_2_4():
    assert run("t12_greenlet_manual_switch.py").stdout.split() == ["1", "3", "2", "4"]


def test_greenlet_prints_12_56_34_78():
    assert run("t13_greenlet_12_56_34_78.py").stdout.split() == ["12", "56", "34", "78"]


def test_greenlet_A_B_alternate():
    r = run("t14_greenlet_AB_forever.py", limit=1.0)
    assert r.stopped
    lines = r.stdout.split()
    assert len(lines) >= 6
    assert lines == ["---A--", "---B--"] * (len(lines) // 2) + ["---A--"] * (len(lines) % 2)
