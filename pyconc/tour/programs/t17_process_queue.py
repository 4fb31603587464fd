# seed 001: a child puts a list into a Queue, the parent gets it.
# Imports changed to pyconc.
from pyconc.multiprocessing import Queue, Process

def f(qq):
    qq.put([122, None, 'heheheda'])

if __name__ == '__main__':
    q = Queue()
    p = Process(target=f, args=(q,))
    p.start()
    print(q.get())
    p.join()
