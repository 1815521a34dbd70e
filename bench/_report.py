"""Result tables: printed to stdout and written as markdown under ``bench/results/``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Table:
    """A titled table of already formatted cells; the first column is left-aligned."""

    title: str
    headers: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)

    def markdown(self) -> str:
        """A markdown table padded to line up in a terminal too."""
        # At least three characters: a markdown rule cell needs "--:".
        widths = [
            max(3, *(len(row[i]) for row in [self.headers, *self.rows]))
            for i in range(len(self.headers))
        ]
        rule = ["-" * (w - 1) + (":" if i else "-") for i, w in enumerate(widths)]
        lines = [_line(self.headers, widths), _line(rule, widths)]
        lines += [_line(row, widths) for row in self.rows]
        return f"### {self.title}\n\n" + "\n".join(lines) + "\n"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    pairs = enumerate(zip(cells, widths, strict=True))
    padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
    return "| " + " | ".join(padded) + " |"


def render(tables: Sequence[Table], notes: Sequence[str]) -> str:
    """Tables followed by a bulleted list of notes."""
    body = "\n".join(table.markdown() for table in tables)
    if notes:
        body += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    return body


def write_results(
    name: str,
    title: str,
    facts: Sequence[tuple[str, str]],
    tables: Sequence[Table],
    notes: Sequence[str],
) -> Path:
    """Overwrite ``bench/results/<name>.md`` with this run; returns its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    header = "\n".join(f"- **{label}:** {value}" for label, value in facts)
    path.write_text(f"# {title}\n\n{header}\n\n{render(tables, notes)}")
    return path
