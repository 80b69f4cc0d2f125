"""The report every challenge importer returns and writes to ``reports/import.json``.

Importers collect **errors** (the import cannot be right: nothing is written, an
:class:`~affectflow.errors.ImportFormatError` lists them all) and **warnings** (counted data problems that are
imported as documented, e.g. frames that are not annotated become missing labels), with file names, plus counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from affectflow.errors import ImportFormatError


@dataclass
class ChallengeImportReport:
    """What an import found.

    Attributes
    ----------
    source:
        The imported folder.
    layout:
        ``"affwild2"``, ``"mer2023"``, ...
    recordings:
        Recordings written, per partition.
    counts:
        Named counts (frames, unannotated frames, missing files, ...).
    warnings, errors:
        One line per problem, naming the file.
    """

    source: str
    layout: str
    recordings: dict[str, int] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"source": self.source, "layout": self.layout, "recordings": dict(self.recordings),
                "counts": dict(self.counts), "warnings": list(self.warnings), "errors": list(self.errors)}

    def files(self, entries: Iterable[Path], suffix: str, *, expected: str) -> Iterator[Path]:
        """The files among ``entries`` (a folder's entries, in order) whose name ends in ``suffix``; hidden entries
        (``.name``) are passed over, any other entry is warned about (``"<entry>: ignored (not <expected>)"``) and
        counted under ``"files ignored"``."""
        for f in entries:
            if f.name.startswith("."):
                continue
            if f.suffix != suffix or not f.is_file():
                self.warnings.append(f"{f}: ignored (not {expected})")
                self.counts["files ignored"] += 1
                continue
            yield f

    def raise_if_errors(self, what: str) -> None:
        """Raise :class:`ImportFormatError` listing every error (first 25 in the message) if there are any."""
        if not self.errors:
            return
        msg = "\n".join(f"  - {e}" for e in self.errors[:25])
        more = f"\n  ... and {len(self.errors) - 25} more" if len(self.errors) > 25 else ""
        raise ImportFormatError(
            f"The {what} import of {self.source} found {len(self.errors)} problem(s); nothing was written:\n{msg}{more}"
        )

    def summary(self) -> str:
        """Human-readable summary with counts (at most 20 warnings; the rest are in the JSON report)."""
        parts = ", ".join(f"{k}: {v}" for k, v in self.recordings.items())
        lines = [f"Imported {sum(self.recordings.values())} recordings ({parts}) from {self.source} ({self.layout})"]
        for k, v in sorted(self.counts.items()):
            lines.append(f"  {k}: {v}")
        return "\n".join(lines + warning_lines(self.warnings))


def warning_lines(warnings: list[str], limit: int = 20) -> list[str]:
    """The summary lines of an import's ``warnings``: the first ``limit``, then how many more there are (all of them
    are in ``reports/import.json``)."""
    lines = [f"  warning: {w}" for w in warnings[:limit]]
    if len(warnings) > limit:
        lines.append(f"  ... and {len(warnings) - limit} more warnings (see reports/import.json)")
    return lines
