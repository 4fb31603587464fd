# seed 000 "如何实现自动挡协程?": three greenlets that gevent.sleep(); the run takes as long as the
# longest sleep, not their sum. Imports changed to pyconc, sleeps 3/2/4 -> 0.3/0.2/0.4.
from pyconc import gevent                              # 引入协程模块

def f1():                                  # 定义协程函数
    print('hello 1')                       # cpu处理
    gevent.sleep(0.3)                        # 模拟i/o操作,跳出
    print('hellw 1 again')   

def f2():
    print('hello 2')
    gevent.sleep(0.2)
    print('hello 2 again')

def f3():
    print('hello 3')
    gevent.sleep(0.4)
    print('hello 3 again')

gevent.joinall([
    gevent.spawn(f1),                       # 启动协程
    gevent.spawn(f2),
    gevent.spawn(f3),

])
