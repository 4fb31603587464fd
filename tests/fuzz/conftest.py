"""Prints the size of the fuzz run (its profile, examples and operations) after the tests."""
from .common import TALLY
from .profiles import PROFILE


def pytest_terminal_summary(terminalreporter):
    if TALLY["examples"]:
        terminalreporter.write_line(
            f"fuzz ({PROFILE} profile): {TALLY['examples']} examples, "
            f"{TALLY['operations']} operations")
