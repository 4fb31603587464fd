# seed 004 "Greenlet": test1/test2 switching by hand; the notes show the output 12 56 34 78.
# Imports changed to pyconc.
from pyconc.greenlet import greenlet

def test1():
    print(12)
    gr2.switch()
    print(34)
    gr2.switch()

def test2():
    print(56)
    gr1.switch()
    print(78)

gr1 = greenlet(test1)                 #启动一个协成
gr2 = greenlet(test2)
gr1.switch()                          #切换,手动切换
