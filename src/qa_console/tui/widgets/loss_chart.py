"""A live training-loss chart (textual-plotext) fed one progress event at a time."""

from __future__ import annotations

from collections.abc import Mapping

from textual_plotext import PlotextPlot


class LossChart(PlotextPlot):
    """Training loss per step. `points` is what is drawn, so tests can read the chart's data.

    The trainer repeats the last *logged* loss on every step's event; a point is added only when a
    new loss arrives, so the line has one vertex per logging step rather than a staircase."""

    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: list[tuple[float, float]] = []

    def on_mount(self) -> None:
        self._draw()

    def reset(self) -> None:
        self.points.clear()
        self._draw()

    def add(self, step: float | None, metrics: Mapping[str, float]) -> None:
        """Add (step, loss) when the event carries a loss that is new since the last point."""
        loss = metrics.get("loss")
        if step is None or loss is None:
            return
        if self.points and (self.points[-1][1] == loss or self.points[-1][0] >= step):
            return
        self.points.append((float(step), float(loss)))
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("training loss")
        plt.xlabel("step")
        if self.points:
            steps, losses = zip(*self.points, strict=True)
            plt.plot(list(steps), list(losses), marker="braille")
        self.refresh()
