"""CPython's own Lib/test/test_queue.py against pyconc.queue: the test module takes the queue
module as a parameter, and pyconc's is bound the way it binds the C variant."""
import unittest

from test import test_queue as tq

import pyconc.queue as pq


class QueueTest(tq.QueueTest, unittest.TestCase):
    queue = pq


class LifoQueueTest(tq.LifoQueueTest, unittest.TestCase):
    queue = pq


class PriorityQueueTest(tq.PriorityQueueTest, unittest.TestCase):
    queue = pq


class FailingQueueTest(tq.FailingQueueTest, unittest.TestCase):
    queue = pq


class SimpleQueueTest(tq.CSimpleQueueTest):
    # CSimpleQueueTest carries the C variant's extra tests (test_is_default, test_reentrancy);
    # its setUp takes self.queue.SimpleQueue.
    queue = pq


if __name__ == "__main__":
    unittest.main()
