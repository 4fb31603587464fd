# seed 003 "5.3.2 协程-greenlet": ---A-- / ---B-- alternating forever (runs forever).
# Imports changed to pyconc, sleep 0.5 -> 0.05; the notes' Python 2 `print "---A--"` statements
# are written as print() calls, the only way to run them on Python 3.
# tour: runs-forever
from pyconc.greenlet import greenlet
import time

def test1():
    while True:
        print("---A--")
        # 切换到gr2中执行
        gr2.switch()
        time.sleep(0.05)

def test2():
    while True:
        print("---B--")
        gr1.switch()
        time.sleep(0.05)

gr1 = greenlet(test1)
gr2 = greenlet(test2)

#切换到gr1中运行
gr1.switch()
