# seed 000 "如何使用select建立一种socket模型,实现并发?": a select() server keeping a queue per
# connection, answering each message upper-cased on the next round of the loop; its client is
# c30_select_threads_client.py (seed 002's two-thread client). Imports changed to pyconc:
# pyconc.gevent's socket and select outside any hub, as drop-ins for the stdlib's. The port
# 6969 -> the free port the tour picks (TOUR_PORT). Like the seed, it spins once a client has
# closed (recv() gives b'' and the connection stays in inputs); the tour stops it.
# tour: serves
# tour: client=c30_select_threads_client.py
# tour: baseline=stdlib
#!/usr/bin/python3
import os
import pyconc.gevent.socket as socket
import pyconc.gevent.select as select
from pyconc import queue

server = socket.socket()
server.bind(('localhost',int(os.environ.get("TOUR_PORT", "6969"))))
server.listen(5)                            # 声明协议,启动监听
server.setblocking(False)                   #设置为非堵塞

inputs = [server,]                          #生成检测列表
#inputs = [server,conn,conn2]
outputs = []                                # 下次循环开始就返回上次循环加入的数据
client_data = {}                            # 定义一个接收各个连接客户端发来数据的字典

while True:                                 # 让select一直检测
    readable, writeable, exceptional = select.select(inputs,outputs,inputs)
    print(exceptional)               # readable, writeable, exceptional,三个对象是固定参数,不可更改
    for r in readable:        # readable中返回的是活动的连接列表,不活动不返回,r是活着的连接
        if r is server:                     # 判断是否有新的连接
            conn, addr = server.accept()    # 接收数据,非堵塞
            inputs.append(conn)             # 把新的连接加入到select中检测
            client_data[conn] = queue.Queue()       # 一个新的连接生成一个队列对象
        else:
            try:
                data = r.recv(1024)               # 接收数据
                client_data[r].put(data)          # 把数据放入字典中的队列中
                outputs.append(r)             # 向outputs 中加入连接对象,下次循环返回给writeable
            except Exception as e:
                print(r)
                inputs.remove(r)              # 远程客户端断开连接,移除检查对象
                
    for w in writeable:                             # 循环把客户端的发来的请求处理发回给客户端
        send_data = client_data[w].get()            # 获取队列中请求
        w.send(send_data.upper())                   # 发送处理的数据
        outputs.remove(w)                           # 发完了,移除output中连接对象
                                                    # 实际上更加慢了,装逼,包装
    for e in exceptional:                       # 断开连接
        if e in outputs:                        # 判断是否连接对象在outputs中
            outputs.remove(e)                   # 删除outputs连接对象
        inputs.remove(e)                        # 建立连接就会在inputs中
        del client_data[e]                      # 删除连接对象的字典中队列数据
