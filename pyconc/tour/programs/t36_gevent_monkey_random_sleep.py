# seed 003 "5.3.4 打补丁": two greenlets call the plain time.sleep() after monkey.patch_all(),
# which makes it switch to the other greenlet. Imports changed to pyconc, random.random()
# seconds -> random.random() / 10.
from pyconc.gevent import monkey
from pyconc import gevent
import random
import time
monkey.patch_all()
def coroutine_work(coroutine_name):
    for i in range(10):
        print(coroutine_name, i)
        time.sleep(random.random() / 10)

gevent.joinall([
        gevent.spawn(coroutine_work, "work1"),
        gevent.spawn(coroutine_work, "work2")
])
