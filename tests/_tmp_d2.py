import sys, time
from pyconc import threading
mode = sys.argv[1]
if 's' in mode:
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
if 'e' in mode:
    blocked = threading.Event()
    threading.Thread(target=blocked.wait, daemon=True).start()
if 'n' in mode:
    threading.Thread(target=lambda: None, daemon=True).start()
print("main done", flush=True)
