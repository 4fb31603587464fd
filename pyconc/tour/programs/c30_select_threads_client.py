# seed 002 client: two threads each connect, send b'hello', wait, and print the answer.
# Imports changed to pyconc (pyconc.gevent's socket outside any hub, as the stdlib's), sleep
# 1 -> 0.5. The port 9000 -> the port the tour picked for the server (TOUR_PORT).
# tour: baseline=stdlib
import os
import time
import pyconc.gevent.socket as socket
from pyconc import threading
def func():
    sk = socket.socket()
    sk.connect(('127.0.0.1',int(os.environ.get("TOUR_PORT", "9000"))))
    sk.send(b'hello')
    time.sleep(0.5)
    print(sk.recv(1024))
    sk.close()
for i in range(2):
    threading.Thread(target=func).start()
