# seed 003 "3.3 查看线程数": watch threading.enumerate() until only the main thread is left.
# Imports changed to pyconc, sleep 1 -> 0.1.
from pyconc import threading
import time

def test1():
    for i in range(5):
        print("***test1***%d" % i)
        time.sleep(0.1)

def test2():
    for i in range(10):
        print("***test2***%d" % i)
        time.sleep(0.1)

def main():
    t1 = threading.Thread(target=test1)
    t2 = threading.Thread(target=test2)

    t1.start()
    t2.start()
    while True:

        print(threading.enumerate())
        time.sleep(0.1)
        if len(threading.enumerate()) <= 1:
            break

if __name__ == "__main__":
    main()
