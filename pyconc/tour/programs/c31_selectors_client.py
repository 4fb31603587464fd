# seed 002 "#客户端": sends each line typed and prints the answer; like the seed it loops on
# input() until its input ends (EOFError). Imports changed to pyconc (pyconc.gevent's socket
# outside any hub, as the stdlib's). The port 8088 -> the port the tour picked (TOUR_PORT).
# tour: baseline=stdlib
import os
from pyconc.gevent.socket import *
c=socket(AF_INET,SOCK_STREAM)
c.connect(('127.0.0.1',int(os.environ.get("TOUR_PORT", "8088"))))
while True:
    msg=input('>>: ')
    if not msg:continue
    c.send(msg.encode('utf-8'))
    data=c.recv(1024)
    print(data.decode('utf-8'))
