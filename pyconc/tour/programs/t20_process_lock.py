# seed 001 "进程锁": processes share a Lock for the screen (100 -> 20 processes, and the
# lecture's commented-out acquire/release switched on).
# Imports changed to pyconc.
from pyconc.multiprocessing import Process, Lock

def f(l, i):
    l.acquire()
    print('hehehe', i)
    l.release()

if __name__ == '__main__':
    lock = Lock()
    for num in range(20):
        Process(target=f, args=(lock, num)).start()
