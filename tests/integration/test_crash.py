"""A few cycles of the crash-consistency tool (crashloop.py runs any
number; the README reports a long run)."""
import unittest

import crashloop


class CrashLoop(unittest.TestCase):
    def test_a_few_cycles(self):
        self.assertEqual(crashloop.main(["--cycles", "4", "--clients", "3"]), 0)


if __name__ == "__main__":
    unittest.main()
