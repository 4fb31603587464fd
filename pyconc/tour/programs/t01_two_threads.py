# seed 000 "如何实现一个最简单的多线程": two threads running run(n). Imports changed to pyconc, sleep 2 -> 0.2.
from pyconc import threading                                   #导入线程模块
import time
def run(n):                                        # run可以随便改名
    print("talk", n)
    time.sleep(0.2)

t_1 = threading.Thread(target=run, args =('t1',))   # 实例一个线程
            # target =目标函数 ,args =参数(元组形式,一个参数也要加逗号)
t_2 = threading.Thread(target=run,args=('t2',))

t_1.start()             # 启动线程
t_2.start()
