"""Logs to stdout, one line a record, with key=value fields that journald and grep keep.

Under systemd (JOURNAL_STREAM set) the timestamp is left to journald and the syslog priority
prefix (<3>, <4>, ...) gives each line its level.
"""

from __future__ import annotations

import logging
import os
import sys

_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


class _Formatter(logging.Formatter):
    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        fields = f"level={record.levelname.lower()} logger={record.name} msg={msg}"
        if self.journald:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{fields}"
        return f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {fields}"


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Formatter(journald="JOURNAL_STREAM" in os.environ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pymodbus logs every timeout at error level; our drivers report those as events
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
