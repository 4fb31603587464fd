# seed 004 "用协成来简单爬取一下网页": urlopen from three greenlets WITHOUT monkey.patch_all():
# urllib's sockets block the whole thread, so the pages come one after the other (the notes:
# "程序肯定是串行执行的"). Imports changed to pyconc. The three web sites -> three HTTPS pages of
# a local server that the tour starts on 127.0.0.1 (each answers after a delay, certificate
# trusted through SSL_CERT_FILE): their URLs come from the TOUR_URLS variable.
# tour: urls=https:3
import os
from pyconc import gevent
import time
from urllib.request import urlopen
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
