# seed 001: the parent's and the child's pids (os.getppid / os.getpid).
# Imports changed to pyconc.
from pyconc import multiprocessing
import os

def info(title):
    print(title)
    print('module name:', __name__)
    print('parent process id', os.getppid())
    print('process id', os.getpid())
    print('\n\n')

def f(name):
    info('\033[31;1mfunction f\033[0m')
    print('hello', name)

if __name__ == '__main__':
    info('\033[32;1mmain process line\033[0m')
    p = multiprocessing.Process(target=f, args=('hehe',))
    p.start()
    p.join()
