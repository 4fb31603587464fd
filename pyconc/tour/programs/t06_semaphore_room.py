# seed 003 "3.9.1 信号量": a room that holds 5 guests at once, 20 guests.
# Imports changed to pyconc; sleep(random.randint(1,3)) -> sleep(random.randint(1,3)/10).
from pyconc.threading import  Thread,Semaphore
import time
import random

def func(i):
    sem.acquire()
    print('第%s个客人进入屋子'%i)
    time.sleep(random.randint(1,3)/10)
    print('第%s个客人离开屋子' % i)
    sem.release()


sem = Semaphore(5)
for i in range(20):
    t = Thread(target=func,args=(i,))
    t.start()
