# seed 000 "如何实现一个红绿灯程序": an Event as a traffic light, a car thread waits on red (runs forever).
# Imports changed to pyconc, sleep 1 -> 0.1.
# tour: runs-forever
from pyconc import threading
import time

event = threading.Event()               # 声明事件

def light():                            # 定义红灯
    event.set()                         # 设置事件
    conut = 0                           # 计时
    while True:
        if conut > 5 and conut < 10:    # 在5到10秒内,红灯,清空事件
            event.clear()
            print('light red........')
        elif conut > 10 :               # 绿灯,设置事件
            event.set()
            print('light green.......')
            conut = 0
        else:
            print('light green.......')
        time.sleep(0.1)
        conut += 1

def car(name):                          # 定义车
    while True:
        if event.is_set():              # 检查事件状态,如果是红灯就停止
            print('[%s] is run......'%name)
            time.sleep(0.1)
        else:
            print('[%s] is wait......'%name)
            event.wait()                # 被清空处于堵塞状态
            print('[%s] is run......' % name)

if __name__ == '__main__':
    light_1 = threading.Thread(target=light)    # 实例红灯线程
    light_1.start()                             # 启动
    car_1 = threading.Thread(target=car,args=('哈士奇',))  # 实例车进程
    car_1.start()                                          # 启动
