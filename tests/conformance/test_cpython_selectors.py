"""CPython's own Lib/test/test_selectors.py against pyconc.selectors: its test cases take the
selector class as SELECTOR, and each of pyconc's is bound the way the module binds the stdlib's
(the installed interpreter ships the module in its `test` package).

The one exclusion, test_modify_unregister, mocks the stdlib class's `_selector_cls` (the
select.epoll / select.poll object its pure-Python selectors wrap) to make modify() fail;
pyconc's selectors have no inner poller object to mock. The behaviour it guards -- a modify()
whose poller call fails drops the key -- is tested against the stdlib in
tests/test_selectors_api.py::test_modify_failure_unregisters."""
import unittest

from test import test_selectors as ts

import pyconc.selectors as ps

_NO_POLLER = ("mocks selectors.<Class>._selector_cls, the stdlib's inner select.epoll/poll "
              "object; pyconc's selectors keep the poller in C (the same behaviour is tested in "
              "tests/test_selectors_api.py::test_modify_failure_unregisters)")


class _NoPollerMock:
    def test_modify_unregister(self):
        self.skipTest(_NO_POLLER)


class DefaultSelectorTestCase(_NoPollerMock, ts.BaseSelectorTestCase, unittest.TestCase):
    SELECTOR = ps.DefaultSelector


class SelectSelectorTestCase(ts.BaseSelectorTestCase, unittest.TestCase):
    SELECTOR = ps.SelectSelector


class PollSelectorTestCase(_NoPollerMock, ts.BaseSelectorTestCase, ts.ScalableSelectorMixIn,
                           unittest.TestCase):
    SELECTOR = ps.PollSelector


class EpollSelectorTestCase(_NoPollerMock, ts.BaseSelectorTestCase, ts.ScalableSelectorMixIn,
                            unittest.TestCase):
    SELECTOR = ps.EpollSelector

    test_register_file = ts.EpollSelectorTestCase.test_register_file


def test_default_is_epoll():
    assert ps.DefaultSelector is ps.EpollSelector


if __name__ == "__main__":
    unittest.main()
