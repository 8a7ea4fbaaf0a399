"""Progress of long tool runs: a tqdm bar on a terminal, a plain line now and then otherwise.

Runs over a whole bucket take hours; an operator at a terminal wants a bar,
while a cron job's log wants a few lines it can read later, not a stream of
carriage returns.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

# Seconds between two plain lines: a log of an hour-long run stays short.
PLAIN_INTERVAL = 10.0


class Meter:
    """Counts the steps of one run (of ``total``, when known) and shows them."""

    def __init__(
        self,
        description: str,
        total: int | None = None,
        unit: str = "it",
        stream: TextIO | None = None,
        interval: float = PLAIN_INTERVAL,
    ) -> None:
        self._stream = stream or sys.stderr
        self._description = description
        self._total = total
        self._unit = unit
        self._interval = interval
        self._count = 0
        self._note = ""
        self._shown = time.monotonic()
        self._bar: tqdm[None] | None = None
        if self._stream.isatty():
            self._bar = tqdm(total=total, unit=f" {unit}", desc=description, file=self._stream,
                             dynamic_ncols=True, leave=False)

    def advance(self, count: int = 1) -> None:
        self._count += count
        if self._bar is not None:
            self._bar.update(count)
        else:
            self._maybe_line()

    def note(self, text: str) -> None:
        """What the current step is doing (``<zarr id>: 1200 versions listed``)."""
        self._note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
        else:
            self._maybe_line()

    def echo(self, line: str, file: TextIO | None = None) -> None:
        """Print a line (to stdout by default) without tearing the bar."""
        if self._bar is not None:
            self._bar.write(line, file=file or sys.stdout)
        else:
            print(line, file=file or sys.stdout)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            self._line()

    def __enter__(self) -> Meter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _maybe_line(self) -> None:
        if time.monotonic() - self._shown >= self._interval:
            self._line()

    def _line(self) -> None:
        self._shown = time.monotonic()
        done = f"{self._count}/{self._total}" if self._total is not None else str(self._count)
        note = f" ({self._note})" if self._note else ""
        print(f"{self._description}: {done} {self._unit}{note}", file=self._stream, flush=True)
