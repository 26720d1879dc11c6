"""Block diagrams drawn with matplotlib: the pictures notebooks use to show an idea.

A diagram is a dict of boxes placed on a grid and a list of arrows between them::

    boxes = {
        "x": Box(0, 0, "features"),
        "e1": Box(-1, 1, "expert 1", "model"), "e2": Box(1, 1, "expert 2", "model"),
        "y": Box(0, 2, "task tower", "output"),
    }
    draw_diagram(boxes, [("x", "e1"), ("x", "e2"), ("e1", "y"), ("e2", "y")], "MMoE")

Coordinates are grid units (x to the right, y upwards); the figure is sized to fit. Box kinds
choose the colour, so every diagram in the course uses one legend: ``input`` (data), ``model``
(a learned block), ``shared`` (parameters every scenario/task uses), ``specific`` (one per
scenario/task), ``op`` (a fixed operation), ``output``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

COLOURS = {
    "input": "#dbe9f6",
    "model": "#fde2c4",
    "shared": "#f9d5d3",
    "specific": "#d5ecd4",
    "op": "#ececec",
    "output": "#e6dcf1",
}


@dataclass(frozen=True)
class Box:
    """One box: centre ``(x, y)`` in grid units, its text and its kind (a key of COLOURS)."""

    x: float
    y: float
    text: str
    kind: str = "op"
    width: float = 1.6
    height: float = 0.55

    def __post_init__(self) -> None:
        if self.kind not in COLOURS:
            raise ValueError(f"Box kind must be one of {sorted(COLOURS)}, got {self.kind!r}")


def draw_diagram(
    boxes: Mapping[str, Box],
    arrows: Sequence[tuple[str, str] | tuple[str, str, str]],
    title: str = "",
    *,
    scale: float = 1.5,
    ax: plt.Axes | None = None,
) -> Figure:
    """Draw ``boxes`` joined by ``arrows`` (``(src, dst)`` or ``(src, dst, label)``).

    Returns:
        The figure (a notebook shows it; ``fig.savefig`` writes it).
    """
    if not boxes:
        raise ValueError("draw_diagram needs at least one box")
    unknown = sorted({name for arrow in arrows for name in arrow[:2]} - set(boxes))
    if unknown:
        raise ValueError(f"arrows name boxes {unknown} that are not in boxes {sorted(boxes)}")
    xs = [b.x for b in boxes.values()]
    ys = [b.y for b in boxes.values()]
    span_x = max(xs) - min(xs) + max(b.width for b in boxes.values()) + 0.4
    span_y = max(ys) - min(ys) + 1.2
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(3.0, span_x * scale), max(1.8, span_y * scale * 0.75)))
    else:
        fig = ax.figure
    for box in boxes.values():
        ax.add_patch(
            FancyBboxPatch(
                (box.x - box.width / 2, box.y - box.height / 2),
                box.width,
                box.height,
                boxstyle="round,pad=0.02,rounding_size=0.08",
                facecolor=COLOURS[box.kind],
                edgecolor="#555555",
                linewidth=1.0,
            )
        )
        ax.text(box.x, box.y, box.text, ha="center", va="center", fontsize=9)
    for arrow in arrows:
        src, dst = boxes[arrow[0]], boxes[arrow[1]]
        start, end = _edge_point(src, dst), _edge_point(dst, src)
        ax.add_patch(
            FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#444444")
        )
        if len(arrow) == 3:
            mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
            ax.text(mid[0] + 0.05, mid[1], arrow[2], fontsize=8, color="#333333", va="center")
    pad_x = max(b.width for b in boxes.values()) / 2 + 0.2
    ax.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_aspect("auto")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def _edge_point(box: Box, toward: Box) -> tuple[float, float]:
    """Where the line from ``box``'s centre toward ``toward``'s centre leaves ``box``."""
    dx, dy = toward.x - box.x, toward.y - box.y
    if dx == 0 and dy == 0:
        return box.x, box.y
    half_w, half_h = box.width / 2, box.height / 2
    scale = min(half_w / abs(dx) if dx else float("inf"), half_h / abs(dy) if dy else float("inf"))
    return box.x + dx * scale, box.y + dy * scale
