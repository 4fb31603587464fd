# seed 004 "Client": the client of t29_gevent_tcp_server.py, sending each line typed and
# printing the echo; like the seed it loops on input() until its input ends (EOFError).
# Imports changed to pyconc (its socket, outside any hub, is a blocking socket as the stdlib's).
# The port 8001 -> the port the tour picked for the server (TOUR_PORT).
# tour: baseline=stdlib
import os
import pyconc.gevent.socket as socket
 
HOST = 'localhost'    # The remote host
PORT = int(os.environ.get("TOUR_PORT", "8001"))           # The same port as used by the server
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect((HOST, PORT))
while True:
    msg = bytes(input(">>:"),encoding="utf8")
    s.sendall(msg)
    data = s.recv(1024)
    #print(data)
 
    print('Received', repr(data))
s.close()
