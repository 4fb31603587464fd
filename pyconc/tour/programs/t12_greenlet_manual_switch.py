# seed 000 "通过 greenlet手动的切换协程": two greenlets handing control back and forth (1 3 2 4).
# Imports changed to pyconc.
from pyconc.greenlet import greenlet   # 导入协程模块

def f1():                       # 定义一个协程函数1
    print(1)                    # 协程1切换执行的函数
    g_2.switch()                # 切换到协程函数2,也是协程函数1的回来执行得起点
    print(2)                    # 协程1切换回来执行函数
    g_2.switch()                # 切换到协程2函数

def f2():                       # 定义协程2函数
    print(3)                    # 协程2执行的函数
    g_1.switch()                # 切换到协程函数1,也是协程函数2的回来执行得起点
    print(4)                    # 协程2执行的函数

g_1 = greenlet(f1)              # 启动协程1
g_2 = greenlet(f2)              # 启动协程2,启动协程并不代表,执行协程函数

g_1.switch()                    # 执行协程1
