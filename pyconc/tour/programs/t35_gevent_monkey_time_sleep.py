# seed 004 "要打上一个补丁": the same three functions with time.sleep() after monkey.patch_all():
# time.sleep() now yields to the other greenlets, and the run takes the longest sleep, not the
# sum. Imports changed to pyconc, sleeps 2/1/0.5 -> 0.8/0.4/0.2 (the seed's "\n" restored).
'''协成:微线程,主要作用是遇到IO操作就切换,程序本身就串行的,主要是在各个IO直接来回切换,节省时间'''
from pyconc import gevent
import time
from pyconc.gevent import monkey

monkey.patch_all()                                                     #把当前程序的所有的IO操作给单独的做上标记
def fun():
    print("In the function fun!!!\n")
    time.sleep(0.8)                                                      #IO阻塞,也可以是具体执行一个操作,这里直接等待
    print("33[31mCome back to the function of fun again!33[0m\n")

def inner():
    '''定义一个函数,包含IO阻塞'''
    print("Running in the function of inner!!!\n")
    time.sleep(0.4)
    print("33[32mRunning back to the function of inner33[0m\n")

def outer(name,arg):
    '''定义一个函数,也包含IO阻塞'''
    print("周末去搞基把,带上%s\n" %name)
    time.sleep(0.2)
    print("不好吧,%s是人妖,不好那口,还是带上%s!!!"  %(name,arg))

start_time = time.time()
gevent.joinall([
    gevent.spawn(fun),
    gevent.spawn(inner),
    gevent.spawn(outer,"alex","wupeiqi"),
])
end_time = time.time()
print("花费时间:%s" %(end_time -start_time))
