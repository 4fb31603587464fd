# seed 003 "5.3.3 协程-gevent": three greenlets print gevent.getcurrent() and take turns at each
# gevent.sleep(). Imports changed to pyconc, sleep 0.5 -> 0.1.
from pyconc import gevent


def f1(n):
    for i in range(n):
        print(gevent.getcurrent(), i)
        gevent.sleep(0.1)


def f2(n):
    for i in range(n):
        print(gevent.getcurrent(), i)
        gevent.sleep(0.1)


def f3(n):
    for i in range(n):
        print(gevent.getcurrent(), i)   # 打印当前执行的协程
        gevent.sleep(0.1)  # sleep 0.5秒


print("1")
g1 = gevent.spawn(f1, 5)
print("2")
g2 = gevent.spawn(f2, 5)
print("3")
g3 = gevent.spawn(f3, 5)
g1.join()
g2.join()
g3.join()
