"""Small inline SVG charts for the run report, drawn in Python (no script, no network).

``line_chart`` draws one polyline per series (the score curves), ``bar_chart`` one bar
per step (cost, calls). Every point and bar has a ``<title>``, which browsers show as
a tooltip. All text is escaped; non-finite and missing values are left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

Point = tuple[float, float | None]

WIDTH, HEIGHT = 480, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 28, 36
#: Points drawn as circles (with tooltips) up to this many per series.
MAX_MARKERS = 300


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``low`` .. ``high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first + i * step, 12) for i in range(4 * count)]
    ticks = [t for i, t in enumerate(ticks) if i == 0 or (t != ticks[i - 1] and ticks[i - 1] < high)]
    return ticks if len(ticks) > 1 else [low, high]


def line_chart(
    series: dict[str, Sequence[Point]],
    *,
    title: str,
    colors: Sequence[str] = ("#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9"),
    y_range: tuple[float, float] | None = None,
    fmt: Callable[[float], str] = lambda v: f"{v:.3g}",
    size: tuple[int, int] = (WIDTH, HEIGHT),
) -> Markup:
    """An SVG line chart of ``series`` (name -> ``(step, value)`` points), with a legend."""
    clean = {
        name: [(x, y) for x, y in pts if _finite(x) and y is not None and _finite(y)] for name, pts in series.items()
    }
    xs = [x for pts in clean.values() for x, _ in pts] or [0.0, 1.0]
    ys = [y for pts in clean.values() for _, y in pts] or [0.0, 1.0]
    lo, hi = y_range if y_range is not None else (min(ys), max(ys))
    frame = _Frame(min(xs), max(xs), min(lo, *ys), max(hi, *ys), size)
    parts = [frame.axes(title, fmt)]
    for i, (name, pts) in enumerate(clean.items()):
        color = colors[i % len(colors)]
        cls = f"series series-{_slug(name)}"
        coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in pts)
        dash = ' stroke-dasharray="6 3"' if i % 2 else ""  # a later series over an earlier one lets both show
        parts.append(f'<polyline class="{cls}" fill="none" stroke="{color}" stroke-width="2"{dash} points="{coords}"/>')
        if len(pts) <= MAX_MARKERS:
            for x, y in pts:
                tip = escape(f"{name}, step {x:g}: {fmt(y)}")
                parts.append(
                    f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3" fill="{color}">'
                    f"<title>{tip}</title></circle>"
                )
        lx = _LEFT + 8 + 120 * i
        parts.append(f'<rect x="{lx}" y="6" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{lx + 16}" y="16" font-size="12">{escape(name)}</text>')
    return _svg(title, parts, size)


def bar_chart(
    bars: Sequence[Point],
    *,
    title: str,
    color: str = "#1c7ed6",
    fmt: Callable[[float], str] = lambda v: f"{v:.3g}",
    size: tuple[int, int] = (280, HEIGHT),
) -> Markup:
    """An SVG bar chart: one bar per ``(step, value)``."""
    clean = [(x, y) for x, y in bars if _finite(x) and y is not None and _finite(y)]
    xs = [x for x, _ in clean] or [1.0]
    ys = [y for _, y in clean] or [0.0]
    frame = _Frame(min(xs) - 0.5, max(xs) + 0.5, min(0.0, *ys), max(0.0, *ys), size)
    width = max(1.0, (frame.width - _LEFT - _RIGHT) / max(len(clean), 1) * 0.7)
    parts = [frame.axes(title, fmt)]
    for x, y in clean:
        top, base = frame.y(max(y, 0.0)), frame.y(min(y, 0.0))
        tip = escape(f"step {x:g}: {fmt(y)}")
        parts.append(
            f'<rect class="bar" x="{frame.x(x) - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
            f'height="{max(base - top, 0.5):.1f}" fill="{color}"><title>{tip}</title></rect>'
        )
    return _svg(title, parts, size)


class _Frame:
    """Maps data coordinates to the plot area and draws its axes."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, size: tuple[int, int]) -> None:
        self.width, self.height = size
        self.yticks = nice_ticks(y0, y1)
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1)
        self.y0, self.y1 = min(y0, self.yticks[0]), max(y1, self.yticks[-1])
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1

    def x(self, value: float) -> float:
        return _LEFT + (value - self.x0) / (self.x1 - self.x0) * (self.width - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        return self.height - _BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (self.height - _TOP - _BOTTOM)

    def axes(self, title: str, fmt: Callable[[float], str]) -> str:
        left, right, bottom = _LEFT, self.width - _RIGHT, self.height - _BOTTOM
        out = [f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#868e96"/>']
        for tick in self.yticks:
            y = self.y(tick)
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e9ecef"/>')
            out.append(
                f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{escape(fmt(tick))}</text>'
            )
        lo, hi = math.ceil(self.x0), math.floor(self.x1)
        wanted = max(3, (right - left) // 40)
        steps = list(range(lo, hi + 1))
        if len(steps) > wanted:  # round numbers, and the first step
            ticks = [t for t in nice_ticks(lo, hi, wanted) if lo < t <= hi]
            steps = [lo, *(t for t in ticks if (t - lo) >= (ticks[-1] - lo) / (2 * len(ticks)))]
        for step in steps:
            x = self.x(step)
            out.append(f'<text x="{x:.1f}" y="{bottom + 16}" font-size="11" text-anchor="middle">{step:g}</text>')
        out.append(
            f'<text x="{(left + right) / 2}" y="{self.height - 4}" font-size="11" text-anchor="middle">step</text>'
        )
        return "".join(out)


def _svg(title: str, parts: list[str], size: tuple[int, int]) -> Markup:
    label = escape(title)
    width, height = size
    head = (
        f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="system-ui, sans-serif"><title>{label}</title>'
    )
    return Markup(head + "".join(parts) + "</svg>")


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower())


__all__ = ["bar_chart", "line_chart", "nice_ticks"]
