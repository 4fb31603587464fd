"""The README's runnable example (threads and greenlets sharing one queue) runs as shown."""
import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def section_code(title):
    text = open(README, encoding="utf-8").read()
    part = text[text.index("## " + title):]
    m = re.search(r"```python\n(.*?)```", part, re.S)
    return m.group(1)


@pytest.mark.timeout(60)
def test_threads_and_coroutines_example_runs():
    code = section_code("Threads and coroutines together")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "[0, 1, 4, 9, 16, 25, 36, 49, 64]\n"
