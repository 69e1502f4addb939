"""A timeline of named steps with durations, shown while it runs."""

import contextlib
import dataclasses
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO


@dataclasses.dataclass
class Step:
    """One step of the story.

    :ivar title: what the step does.
    :ivar seconds: how long it took.
    :ivar ok: whether it succeeded.
    :ivar details: facts worth showing (JSON-safe).
    """

    title: str
    seconds: float = 0.0
    ok: bool = True
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


class Timeline:
    """Runs steps, prints progress, and summarises.

    :param out: where progress goes (``None``: nothing is printed).
    """

    def __init__(self, out: TextIO | None = sys.stdout) -> None:
        self.out = out
        self.steps: list[Step] = []

    def say(self, text: str) -> None:
        """Print a line of narration."""
        if self.out is not None:
            self.out.write('      %s\n' % text)
            self.out.flush()

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Step]:
        """Time a step; an exception marks it failed and propagates."""
        step = Step(title)
        self.steps.append(step)
        if self.out is not None:
            self.out.write('[%2d] %s\n' % (len(self.steps), title))
            self.out.flush()
        start = time.monotonic()
        try:
            yield step
        except BaseException as exc:
            step.ok = False
            step.details.setdefault('error', '%s: %s' % (
                type(exc).__name__, exc))
            raise
        finally:
            step.seconds = time.monotonic() - start
            if self.out is not None:
                self.out.write('      %s in %.3f s\n' % (
                    'done' if step.ok else 'FAILED', step.seconds))

    def summary(self) -> str:
        """Return the timeline as a table."""
        width = max([len(s.title) for s in self.steps] + [10])
        lines = ['', 'Timeline', '-' * (width + 16)]
        for number, step in enumerate(self.steps, 1):
            lines.append('%2d. %-*s %9.3f s %s' % (
                number, width, step.title, step.seconds,
                '' if step.ok else 'FAILED'))
        lines.append('-' * (width + 16))
        lines.append('    %-*s %9.3f s' % (
            width, 'total', sum(s.seconds for s in self.steps)))
        return '\n'.join(lines) + '\n'

    def to_json(self) -> list[dict[str, Any]]:
        """Return the steps as JSON-safe dicts."""
        return [dataclasses.asdict(s) for s in self.steps]
