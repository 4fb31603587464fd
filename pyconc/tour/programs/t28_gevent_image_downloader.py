# seed 003 "5.4 图片下载器": two greenlets download two images over HTTPS after
# monkey.patch_all() and write them to 1.jpg and 2.jpg. Imports changed to pyconc. The two
# image URLs -> two HTTPS pages of a local server that the tour starts on 127.0.0.1 (each
# answers after a delay, certificate trusted through SSL_CERT_FILE): from TOUR_URLS.
# tour: urls=https:2
import os
import urllib.request
from pyconc import gevent
from pyconc.gevent import monkey

monkey.patch_all()

URLS = os.environ["TOUR_URLS"].split()  # tour: was "https://rpic.douyucdn.cn/...jpg", ...


def downloader(img_name, img_url):
    rep = urllib.request.urlopen(img_url)
    print(rep)
    img = rep.read()
    with open(img_name, "wb") as f:
        f.write(img)


def main():
    gevent.joinall([gevent.spawn(downloader, "1.jpg",
                                 URLS[0]),
                    gevent.spawn(downloader, "2.jpg",
                                 URLS[1])])


if __name__ == "__main__":
    main()
