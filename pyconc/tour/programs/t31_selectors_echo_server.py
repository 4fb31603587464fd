# seed 000/004 "什么是selectors模块?": an echo server on selectors.DefaultSelector with an
# accept and a read callback; its client is c31_selectors_client.py (seed 002's). Imports
# changed to pyconc: pyconc.selectors, and pyconc.gevent's socket outside any hub as the
# stdlib's. The port 10000 -> the free port the tour picks (TOUR_PORT).
# tour: serves
# tour: client=c31_selectors_client.py clients=3 lines=hello|world|again
# tour: baseline=stdlib
import os
from pyconc import selectors
import pyconc.gevent.socket as socket

sel = selectors.DefaultSelector()

def accept(sock, mask):
    conn, addr = sock.accept()  # Should be ready
    print('accepted', conn, 'from', addr)
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ, read)

def read(conn, mask):
    data = conn.recv(1000)  # Should be ready
    if data:
        print('echoing', repr(data), 'to', conn)
        conn.send(data)  # Hope it won't block
    else:
        print('closing', conn)
        sel.unregister(conn)
        conn.close()

sock = socket.socket()
sock.bind(('localhost', int(os.environ.get("TOUR_PORT", "10000"))))
sock.listen(100)
sock.setblocking(False)

sel.register(sock, selectors.EVENT_READ, accept)

while True:
    events = sel.select()
    for key, mask in events:
        callback = key.data
        callback(key.fileobj, mask)
