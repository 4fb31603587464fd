# seed 003 "3.9.2 事件": ten users try to connect while the database is in maintenance,
# each waiting on an Event with e.wait(0.5). Imports changed to pyconc (timings as in the notes).
from pyconc.threading import Thread,Event
import time
import random


def conn_mysql(e,i):
    count = 1
    while 1:
        if e.is_set():# 如果为True,就是可以连接上数据库
            break
        if count > 3:
            print('连接超时')
            return
        print('第%s个人正在尝试第%s次连接!'%(i,count))
        e.wait(0.5)# 在这里阻塞等待0.5秒,模拟用户连接时的等待
        count+=1
    print('第%s个人连接成功'%i)

def check_mysql(e):
    print('\033[45m 数据库正在维护 \033[0m')# 让数据库初始状态处于维护状态,默认所有用户连接不上
    time.sleep(random.randint(1,2))# 随机1秒或2秒,如果随机1秒的话,用户就可以连接上,2秒就连接不上
    e.set()# 将e.is_set()设为True

if __name__ == '__main__':
    e = Event()
    t = Thread(target=check_mysql,args=(e,))
    t.start()
    for i in range(10):# 产生10个线程都去尝试连接数据库
        t1 = Thread(target=conn_mysql,args=(e,i))
        t1.start()
