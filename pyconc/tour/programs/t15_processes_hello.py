# seed 001 "多进程": ten processes, each says hello (sleep 1 -> 0.1).
# Imports changed to pyconc.
from pyconc import multiprocessing
import time

def run(name):
    print('hello', name)
    time.sleep(0.1)

if __name__ == '__main__':
    for i in range(10):
        p = multiprocessing.Process(target=run, args=("hehe %s" % i,))
        p.start()
