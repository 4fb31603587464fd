# seed 004 "下面我们来看一个协成的实例": fun, inner and outer each gevent.sleep() and the others run
# meanwhile. Imports changed to pyconc, sleeps 2/1/0.5 -> 0.8/0.4/0.2 (the seed's "\n" and
# "\033" come out of the notes as line breaks and "33": the line breaks are put back as "\n").
'''协成:微线程,主要作用是遇到IO操作就切换,程序本身就串行的,主要是在各个IO直接来回切换,节省时间'''
from pyconc import gevent

def fun():
    print("In the function fun!!!\n")                                    #(1)
    gevent.sleep(0.8)                                                      #IO阻塞,也可以是具体执行一个操作,这里直接等待
    print("33[31mCome back to the function of fun again!33[0m\n")    #(6)

def inner():
    '''定义一个函数,包含IO阻塞'''
    print("Running in the function of inner!!!\n")                        #(2)
    gevent.sleep(0.4)                                                       #触发切换,遇到gevent.sleep()触发切换,执行后面代码。
    print("33[32mRunning back to the function of inner33[0m\n")       #(5)

def outer():
    '''定义一个函数,也包含IO阻塞'''
    print("周末去搞基把,带上%s\n" %"alex")                                 #(3)
    gevent.sleep(0.2)
    print("不好吧,%s是人妖,不好那口,还是带上配齐把!!!"  %"alex")          #(4)

gevent.joinall([
    gevent.spawn(fun),
    gevent.spawn(inner),
    gevent.spawn(outer),
])
