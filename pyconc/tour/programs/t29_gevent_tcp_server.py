# seed 004 "通过gevent实现单线程下的多socket并发": a TCP server that spawns a greenlet per
# connection and echoes, after monkey.patch_all(); its client is c29_gevent_tcp_client.py.
# Imports changed to pyconc. The port 8001 -> the free port the tour picks (TOUR_PORT), and
# '0.0.0.0' -> '127.0.0.1': the tour's servers listen on loopback only.
# tour: serves
# tour: client=c29_gevent_tcp_client.py clients=3 lines=hello|world|again
import os
import sys
import socket
import time
from pyconc import gevent
 
from pyconc.gevent import socket,monkey
monkey.patch_all()
 
 
def server(port):
    s = socket.socket()
    s.bind(('127.0.0.1', port))
    s.listen(500)
    while True:
        cli, addr = s.accept()
        gevent.spawn(handle_request, cli)                    #在连接之后启动一个协成,socket中启动的是一个线程。
 
 
 
def handle_request(conn):
    try:
        while True:
            data = conn.recv(1024)
            print("recv:", data)
            conn.send(data)
            if not data:
                conn.shutdown(socket.SHUT_WR)
 
    except Exception as  ex:
        print(ex)
    finally:
        conn.close()
if __name__ == '__main__':
    server(int(os.environ.get("TOUR_PORT", "8001")))
