# seed 003 "文件夹copy器": Pool(5) copies a folder's files, Manager().Queue() reports progress.
# Imports changed to pyconc. The tour prepares a folder "src" of 20 files and types its name.
# tour: stdin=src
# tour: make-folder=src:20
import os
from pyconc import multiprocessing


def copy_file(q, file_name, old_floder_names, new_floder_name):
    """完成文件的复制"""
    print("模拟copy文件:从%s---->到%s文件名是:%s" % (old_floder_names, new_floder_name, file_name))
    old_f = open(old_floder_names + "/" + file_name, "rb")
    content = old_f.read()
    old_f.close()

    new_f = open(new_floder_name + "/" + file_name, "wb")
    new_f.write(content)
    new_f.close()
    q.put(file_name)


def main():
    old_floder_name = input("请输入要copy的文件夹的名字:")
    try:
        new_floder_name = old_floder_name + "[复件]"
        os.mkdir(new_floder_name)
    except:
        pass
    file_names = os.listdir(old_floder_name)
    print(file_names)
    po = multiprocessing.Pool(5)
    q = multiprocessing.Manager().Queue()
    for file_name in file_names:
        po.apply_async(copy_file, args=(q, file_name, old_floder_name, new_floder_name))
    po.close()
    all_file_num = len(file_names)
    copy_ok_num = 0
    while True:
        file_name = q.get()
        copy_ok_num += 1
        print("\r拷贝进度为:%.2f%%" % (copy_ok_num * 100 / all_file_num), end='')
        if copy_ok_num >= all_file_num:
            break

if __name__ == "__main__":
    main()
