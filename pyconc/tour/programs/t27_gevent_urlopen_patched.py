# seed 004 "遇到IO阻塞时会自动切换任务": the same crawler after monkey.patch_all(): the three
# pages are fetched at once. Imports changed to pyconc. The three web sites -> three HTTPS pages
# of a local server that the tour starts on 127.0.0.1 (each answers after a delay, certificate
# trusted through SSL_CERT_FILE): their URLs come from the TOUR_URLS variable.
# tour: urls=https:3
import os
from pyconc import gevent
import time
from urllib.request import urlopen
from pyconc.gevent import monkey
monkey.patch_all()
'''导入urllib模块中的urlopen用来打开网页'''

URLS = os.environ["TOUR_URLS"].split()  # tour: was "https://www.cnblogs.com/...", ...

def func(url):
    print("33[31m----------------------并发的爬取未网页---------------------------33[0m")
    resp = urlopen(url)                                      #使用urlopen打开一个网址
    data = resp.read()                                       #读取网页里面的内容
    with open("alex.html",'wb') as f:
        f.write(data)
    print("%s个字节被下载,从网页%s。" %(len(data),url))

# if __name__ == "__mian__":
start_time = time.time()
gevent.joinall([
    gevent.spawn(func,URLS[0]),
    gevent.spawn(func,URLS[1]),
    gevent.spawn(func,URLS[2])
    ])
end_time = time.time()
cost_time = end_time - start_time
print("cost time:%s" %cost_time)
