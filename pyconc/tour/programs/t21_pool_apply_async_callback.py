# seed 001 "进程池": Pool(5), apply_async with a callback, close then join (sleep 1 -> 0.1).
# Imports changed to pyconc.
from pyconc.multiprocessing import Process, Pool
import time, os

def Foo(i):
    time.sleep(0.1)
    print('in process', os.getpid())
    return i + 100

def Bar(arg):
    print("-->exec done", arg, os.getpid())

if __name__ == '__main__':
    pool = Pool(5)
    print('主进程', os.getpid())
    for i in range(10):
        pool.apply_async(func=Foo, args=(i,), callback=Bar)
    print('end')
    pool.close()
    pool.join()
