# seed 003 "3.7.2 互斥锁解决资源竞争问题": two threads x 1,000,000 increments under a mutex.
# Imports changed to pyconc; the sleep of 2 s is kept (it is what waits for the threads).
import time
from pyconc import threading

g_num = 0


def test1(num):
    global g_num
    # 上锁
    # mutex.acquire()
    for i in range(num):
        mutex.acquire()
        g_num += 1
        # 解锁
        # mutex.release()
        mutex.release()
    print("---in test1 g_num=%d" % g_num)

def test2(num):
    global g_num
    # mutex.acquire()
    for i in range(num):
        mutex.acquire()
        g_num += 1
        mutex.release()
    # mutex.release()
    print("---in test1 g_num=%d" % g_num)

# 创建对象
mutex = threading.Lock()

def main():
    t1 = threading.Thread(target=test1, args=(1000000,))
    t2 = threading.Thread(target=test2, args=(1000000,))
    t1.start()
    t2.start()
    time.sleep(2)

    print("in main g_num=%d" % g_num)


if __name__ == "__main__":
    main()
