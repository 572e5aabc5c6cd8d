"""A target's output, kept within bounds whatever it writes: a head and a tail of lines for each
scenario, and every line that held a secret rfcheck issued, found as the output streams (SEC-03).

A target may write gigabytes, or one line of 200 MB without a newline; rfcheck keeps at most
:data:`HEAD_CHARS` + :data:`TAIL_CHARS` characters of lines, lines cut at :data:`MAX_LINE`, and says
how much it left out. Tokens and the client secret are searched for in everything, including the part
left out: the secret's line (around the secret) is kept, so that SEC-03 reads it in the output.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable

HEAD_CHARS = 64 * 1024  # the first lines of each scenario's output
TAIL_CHARS = 256 * 1024  # the last lines
MAX_LINE = 8 * 1024  # characters of one line kept (the rest is counted)
MAX_TOKEN = 16 * 1024  # the longest secret looked for whole across two reads
MAX_HITS = 200  # excerpts of lines holding a secret, per scenario
HIT_WIDTH = 160  # characters kept on each side of a secret found in a line left out
ERROR_LINES = 8
# what rfcheck issues (JWTs, URL-safe random strings, Basic credentials) is made of these characters only
_TOKEN = re.compile(r"[A-Za-z0-9_.~+/=-]{16,}")
# what a first error line looks like in Python, Node, the JVM and most loggers
ERROR_LINE = re.compile(r"error|exception|traceback|fatal|panic|unhandled|cannot |could not|failed|refused",
                        re.IGNORECASE)

Known = Callable[[str], bool]  # whether a token-shaped string is (or holds) a secret rfcheck issued


class Output:
    """One scenario's output so far (:meth:`take` starts the next scenario's), thread-safe."""

    def __init__(self, known: Known | None = None) -> None:
        self._known = known
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._head: list[str] = []
        self._head_size = 0
        self._tail: deque[str] = deque()
        self._tail_size = 0
        self._dropped_lines = 0
        self._dropped_chars = 0
        self._line: list[str] = []  # the line being written
        self._line_size = 0
        self._line_cut = 0
        self._scanner = SecretScanner(self._known)
        self._errors: list[str] = []
        self.chars = 0
        self.lines = 0  # lines ended so far (a mark for :meth:`tail`)

    # -- writing --------------------------------------------------------------------------------
    def write(self, text: str) -> None:
        """Any piece of output: whole lines, part of one, many at once."""
        if not text:
            return
        with self._lock:
            self.chars += len(text)
            self._scanner.feed(text)
            lines = text.split("\n")
            for piece in lines[:-1]:
                self._add_to_line(piece)
                self._end_line()
            self._add_to_line(lines[-1])

    def close(self) -> None:
        """The writer is done: its last line (without a newline) counts, its last token is searched."""
        with self._lock:
            self._scanner.close()
            if self._line_size or self._line_cut:
                self._end_line()

    def _add_to_line(self, piece: str) -> None:
        room = MAX_LINE - self._line_size
        if len(piece) > room:
            self._line_cut += len(piece) - max(room, 0)
            piece = piece[:max(room, 0)]
        if piece:
            self._line.append(piece)
            self._line_size += len(piece)

    def _end_line(self) -> None:
        line = "".join(self._line).rstrip("\r")
        if self._line_cut:
            line += f" [rfcheck: {self._line_cut:,} more characters of this line left out]"
        self._line, self._line_size, self._line_cut = [], 0, 0
        self.lines += 1
        if len(self._errors) < ERROR_LINES and ERROR_LINE.search(line):
            self._errors.append(line)
        if self._head_size + len(line) <= HEAD_CHARS and not self._tail:
            self._head.append(line)
            self._head_size += len(line) + 1
            return
        self._tail.append(line)
        self._tail_size += len(line) + 1
        while self._tail_size > TAIL_CHARS and len(self._tail) > 1:
            gone = self._tail.popleft()
            self._tail_size -= len(gone) + 1
            self._dropped_lines += 1
            self._dropped_chars += len(gone)

    # -- reading --------------------------------------------------------------------------------
    def text(self) -> str:
        """The head, what was left out (counted, and the lines holding a secret), the tail."""
        with self._lock:
            return self._text()

    def take(self) -> str:
        """:meth:`text`, then start afresh (the next scenario of a process that keeps running)."""
        with self._lock:
            text = self._text()
            self._reset()
            return text

    def _text(self) -> str:
        lines = list(self._head)
        if self._dropped_lines:
            lines.append(f"[rfcheck: {self._dropped_lines:,} lines ({self._dropped_chars:,} characters) of output "
                         f"left out here; each was searched for the secrets rfcheck issued]")
        kept = "\n".join(self._head) + "\n" + "\n".join(self._tail)
        hits = [hit for hit in self._scanner.hits if hit not in kept]  # only what the bounds left out
        if hits:
            lines.append(f"[rfcheck: {len(hits)} excerpt(s) of lines left out that held a secret rfcheck issued:]")
            lines += hits
        lines += self._tail
        if self._line_size or self._line_cut:
            lines.append("".join(self._line) + (f" [rfcheck: {self._line_cut:,} more characters left out]"
                                                if self._line_cut else ""))
        return "\n".join(lines)

    def tail(self, count: int, since: int = 0) -> list[str]:
        """The last ``count`` lines kept, of those ended after the mark ``since`` (:attr:`lines`)."""
        with self._lock:
            count = min(count, self.lines - since)
            if count <= 0:
                return []
            kept = list(self._tail)[-count:]
            need = count - len(kept)
            if need > 0 and not self._dropped_lines:  # the head goes on into the tail
                kept = list(self._head)[-need:] + kept
            return kept

    def first_errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)


class SecretScanner:
    """Finds the secrets rfcheck issued in text that comes in pieces (a pipe, a page), a token cut in two
    by a read included, and keeps an excerpt around each (:data:`MAX_HITS` at most)."""

    def __init__(self, known: Known | None) -> None:
        self._known = known
        self._carry = ""  # the end of the last piece, which may be the start of a token
        self.hits: list[str] = []

    def feed(self, text: str) -> None:
        self._scan(text, final=False)

    def close(self) -> None:
        self._scan("", final=True)

    def _scan(self, text: str, final: bool) -> None:
        if self._known is None or len(self.hits) >= MAX_HITS:
            return
        buffer = self._carry + text
        self._carry = ""
        for match in _TOKEN.finditer(buffer):
            if match.end() == len(buffer) and not final and len(match.group()) < MAX_TOKEN:
                self._carry = match.group()  # it may go on in the next piece
                break
            if len(self.hits) < MAX_HITS and self._known(match.group().strip(".-~")):
                before = buffer[max(match.start() - HIT_WIDTH, 0):match.start()]
                after = buffer[match.end():match.end() + HIT_WIDTH]
                self.hits.append(before[before.rfind("\n") + 1:] + match.group() + after.split("\n", 1)[0])


_FRAME = re.compile(r'^\s*File "[^"]+", line \d+, in |^\s+at \S')  # a Python or a JavaScript stack frame
_RAISED = re.compile(r"^(\w+\.)*\w*(Error|Exception|Exit|Interrupt|Warning|Fault)\b.*")


def app_error(output: str) -> list[str]:
    """The app's own error in ``output``: its last traceback's last frame and message (Python), or the
    first ``Error: …`` line and its top frame (Node); else its first error-looking line; else nothing."""
    lines = [line.rstrip() for line in output.splitlines()]
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index].strip()
        if _RAISED.match(line) and index > 0 and _FRAME.match(lines[index - 1]) is None \
                and any(_FRAME.match(lines[i]) for i in range(max(index - 3, 0), index)):
            frame = next((lines[i].strip() for i in range(index - 1, max(index - 4, -1), -1)
                          if lines[i].strip().startswith("File ")), "")
            return [part for part in (frame, line[:300]) if part]
    for index, line in enumerate(lines):
        if _RAISED.match(line.strip()) and index + 1 < len(lines) and lines[index + 1].strip().startswith("at "):
            return [line.strip()[:300], lines[index + 1].strip()[:300]]
    first = next((line.strip() for line in lines if ERROR_LINE.search(line)), "")
    return [first[:300]] if first else []
