# seed 000 "通过类来写": a threading.Thread subclass with run(). Imports changed to pyconc, sleep 2 -> 0.2.
from pyconc import threading
import time
class MyThread(threading.Thread):                     # 继承threading.Thread
    def __init__(self,name):                          # 重构父类析构函数
        super(MyThread,self).__init__()               # 继承父类析构函数
        self.name = name
    def run(self):                                    # 必须写run
        print('talk',self.name)
        time.sleep(0.2)

if __name__ == '__main__':
    t_1 = MyThread('t1')                               # 实例一个线程
    t_2 = MyThread('t2')

    t_1.start()
    t_2.start()
