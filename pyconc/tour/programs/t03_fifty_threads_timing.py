# seed 000 "如何实现简单计算线程运行时间": 50 threads, join, total time. Imports changed to pyconc, sleep 2 -> 0.2.
# (The notes' loop joins `t`, the last thread, fifty times; kept as written.)
from pyconc import threading
import time

class MyThread(threading.Thread):
    def __init__(self,name):
        super(MyThread,self).__init__()
        self.name = name
    def run(self):
        print('talk',self.name)
        time.sleep(0.2)
        print('%s is done'%self.name)

start_time = time.time()
if __name__ == '__main__':
    list_t = []                 # 通过列表关联有多少个线程,循环此列表进行线程等待
    for i in range(50):
        t = MyThread(i)         # 实例一个线程
        # t.setDaemon(True)     # 此为守护线程声明,不重要,必须在start前面加
        t.start()
        list_t.append(t)        # 每实例一个线程都加入列表,通过列表长度判断添加了几个进程
for i in list_t:
    t.join()                    # 循环列表,给每个线程加上join()等待,当子线程成为守护线程时候,不需要join
end_time = time.time()

print('running time is : %s'%(end_time - start_time))

print('The mian process.....')
