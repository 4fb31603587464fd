# seed 000 "生产与消费模型": one producer, two consumers, Queue(maxsize=10) (runs forever).
# Imports changed to pyconc, sleep 1 -> 0.1.
# tour: runs-forever
from pyconc import threading
import time
from pyconc import queue

q = queue.Queue(maxsize=10)

def p(name):
    count = 1
    while True:
       print('%s生产第%s包子'%(name,count))
       q.put('包子%s'%count)
       count += 1
       time.sleep(0.1)

def s(name):
    while True:
         q.get()
         print('%s作死的吃,如狼似虎'%name)
         time.sleep(0.1)

if __name__ == '__main__':
    p1 = threading.Thread(target=p, args=('一枝花',))
    s1 = threading.Thread(target=s, args=('北门吹雪',))
    s2 = threading.Thread(target=s, args=('西门吹风',))

    p1.start()
    s1.start()
    s2.start()
