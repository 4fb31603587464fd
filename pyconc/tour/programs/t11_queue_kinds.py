# seed 000 "如何生成使用一个队列": the notes list these calls without a whole program; this is them
# in a row: Queue(maxsize), LifoQueue, PriorityQueue of (priority, data), qsize, get_nowait
# raising when empty, get(timeout=1) raising after a second. (The notes' typos `LifoQuenue`,
# `queue,PriorityQueue` and `Queue(block=True, ...)` are written as the API spells them.)
from pyconc import queue
import time

q = queue.Queue(maxsize=3)              # 先进先出
for i in range(3):
    q.put(i)
print('Queue qsize', q.qsize(), 'full', q.full())
print('Queue', [q.get() for _ in range(3)])

lq = queue.LifoQueue(maxsize=0)         # 后进先出
for i in range(3):
    lq.put(i)
print('LifoQueue', [lq.get() for _ in range(3)])

pq = queue.PriorityQueue(maxsize=0)     # 设置优先级
pq.put((3, 'c'))
pq.put((1, 'a'))                        # 数字越小优先级高
pq.put((2, 'b'))
print('PriorityQueue', [pq.get() for _ in range(3)])

try:
    q.get_nowait()                      # 取一个数据,当没数据时候,抛出异常
except queue.Empty:
    print('get_nowait: queue.Empty')

t0 = time.time()
try:
    q.get(timeout = 1)                  # 取数据1秒钟,1秒钟之后没有数据抛出异常
except queue.Empty:
    print('get(timeout=1): queue.Empty after %.1f s' % (time.time() - t0))
