# seed 003 "进程之间的通信:Queue": a downloader process fills a Queue, an analyzer drains it.
# Imports changed to pyconc.
from pyconc import multiprocessing


def download_from_web(q):
    """下载数据"""
    data = [11, 22, 33, 44]
    for temp in data:
        q.put(temp)
    print("下载器已经下载完毕....")


def analyz_data(q):
    """数据处理"""
    waitting_analy_data = list()
    while True:
        data = q.get()
        waitting_analy_data.append(data)
        if q.empty():
            break
    print(waitting_analy_data)


def main():
    q = multiprocessing.Queue()
    p1 = multiprocessing.Process(target=download_from_web, args=(q,))
    p2 = multiprocessing.Process(target=analyz_data, args=(q,))
    p1.start()
    p2.start()

if __name__ == "__main__":
    main()
