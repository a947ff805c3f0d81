"""Tables that fit the terminal: every CLI table goes through `table()`.

Rules (so an 80- or 120-column terminal never shows "0.0…" or "dem…"):
- numbers and ids are never cut: their columns are as wide as their widest cell;
- when the columns do not fit, low-priority columns are dropped first (and a note says which);
  when even the essential ones do not fit, the table turns vertical: one block per row,
  "column: value" per line, nothing cut;
- free text (titles, reasons) folds onto more lines within a bounded width instead of being cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text


@dataclass
class Col:
    name: str
    kind: str = "text"  # "text" (may fold), "number" / "id" (never cut)
    priority: int = 0  # 0: essential; higher numbers are dropped first when space is short
    max_width: int = 48  # text columns fold beyond this width

    @property
    def right(self) -> bool:
        return self.kind == "number"


PAD = 3  # rich's cell padding and border per column


def table(title: str, columns: Sequence[Col], rows: Sequence[Sequence[object]],
          console: Console, bold: set[tuple[int, int]] | None = None) -> RenderableType:
    """A renderable for `rows` (cells converted with str(); all cells are plain text, never
    markup) that fits `console.width`. `bold` marks (row, column) cells to emphasise."""
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    width = console.width or 80
    need = [_need(c, [r[j] for r in cells]) for j, c in enumerate(columns)]
    keep = list(range(len(columns)))
    dropped: list[str] = []
    while sum(need[j] + PAD for j in keep) + 1 > width:
        optional = [j for j in keep if columns[j].priority > 0]
        if not optional:
            return _vertical(title, columns, cells)
        worst = max(optional, key=lambda j: (columns[j].priority, j))
        keep.remove(worst)
        dropped.append(columns[worst].name)
    t = Table(title=Text(title), title_justify="left")
    for j in keep:
        c = columns[j]
        fixed = c.kind != "text"
        t.add_column(c.name, justify="right" if c.right else "left", no_wrap=fixed,
                     min_width=need[j] if fixed else min(need[j], 12),
                     max_width=None if fixed else c.max_width, overflow="fold")
    for i, r in enumerate(cells):
        t.add_row(*(Text(r[j], style="bold" if bold and (i, j) in bold else "") for j in keep))
    if not dropped:
        return t
    note = Text(f"(hidden to fit {width} columns: {', '.join(dropped)}; widen the terminal or "
                "use --json where offered)", style="dim")
    return Group(t, note)


def _need(c: Col, values: list[str]) -> int:
    widest = max([len(c.name)] + [len(v) for v in values])
    return widest if c.kind != "text" else min(widest, c.max_width)


def _vertical(title: str, columns: Sequence[Col], cells: list[list[str]]) -> RenderableType:
    parts: list[RenderableType] = [Text(title, style="bold")]
    label = max(len(c.name) for c in columns)
    for r in cells:
        parts.append(Text(""))
        for c, v in zip(columns, r):
            parts.append(Text.assemble((f"{c.name:>{label}}: ", "dim"), v))
    return Group(*parts)


__all__ = ["Col", "table", "escape"]
