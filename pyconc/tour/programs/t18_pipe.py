# seed 001 "管道pipe": parent and child talk through a Pipe.
# Imports changed to pyconc.
from pyconc.multiprocessing import Process, Pipe

def f(conn):
    conn.send([123, 'sada', None])
    conn.send([12223, 's343ada321', None])
    print(conn.recv())
    conn.close()

if __name__ == '__main__':
    parent_conn, chile_conn = Pipe()
    p = Process(target=f, args=(chile_conn,))
    p.start()
    print(parent_conn.recv())
    print(parent_conn.recv())
    parent_conn.send('hello child!!')
    p.join()
