# seed 000 "如何使用协程进行大并发爬网页?": requests from three greenlets after monkey.patch_all().
# Imports changed to pyconc. The three web sites -> three pages of a local server that the tour
# starts on 127.0.0.1 (each answers after a delay): their URLs come from the TOUR_URLS variable.
# tour: urls=http:3
# tour: needs=requests
import os
import requests
from pyconc import gevent
from pyconc.gevent import monkey

monkey.patch_all()  # 把当前程序的所有的io操作给单独做上标记,打上补丁

URLS = os.environ["TOUR_URLS"].split()  # tour: was 'http://www.ithome.com', ...


def pa(url):
    try:
        r = requests.get(url, timeout=30)
        r.raise_for_status()
        r.encoding = r.apparent_encoding
        data = r.text
        print(url, data)
    except:
        print(url, '爬取错误')

gevent.joinall([
    gevent.spawn(pa, URLS[0]),
    gevent.spawn(pa, URLS[1]),
    gevent.spawn(pa, URLS[2])
])
