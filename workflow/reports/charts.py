"""The report's four charts as PNG bytes (matplotlib, with a font that has Chinese glyphs).

Figures are drawn on their own `Figure` with the Agg canvas, never through pyplot, so no global
state is shared between reports drawn at the same time.
"""
from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

from matplotlib import font_manager, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import labels

# Fonts with CJK glyphs, best first; fonts-wqy-microhei is the one the Debian package installs.
CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
             "Microsoft YaHei", "SimHei", "PingFang SC")
COLOURS = ("#2f6fb0", "#e07b39", "#3c9a5f", "#c44e52", "#8172b2", "#937860", "#da8bc3")


class NoChineseFont(RuntimeError):
    pass


@lru_cache(maxsize=1)
def chinese_font() -> str:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            return name
    raise NoChineseFont("no font with Chinese glyphs is installed (e.g. apt-get install fonts-wqy-microhei); "
                        f"looked for: {', '.join(CJK_FONTS)}")


def _render(draw, size=(8.0, 3.6)) -> bytes:
    with rc_context({"font.family": "sans-serif", "font.sans-serif": [chinese_font(), "DejaVu Sans"],
                     "axes.unicode_minus": False, "svg.hashsalt": "kesu"}):
        fig = Figure(figsize=size, dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        draw(fig, ax)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def volume_per_day(figures: dict[str, Any]) -> bytes:
    days = figures["per_day"]

    def draw(fig, ax):
        xs = [d["day"][8:] for d in days]
        ax.bar(xs, [d["count"] for d in days], color=COLOURS[0])
        ax.set_title(f"{figures['month']} 每日投诉量")
        ax.set_xlabel("日")
        ax.set_ylabel("投诉量（件）")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="x", labelsize=7)
    return _render(draw)


def category_breakdown(figures: dict[str, Any]) -> bytes:
    rows = [r for r in figures["distribution"]["category"] if r["count"]]

    def draw(fig, ax):
        names = [r["label"] for r in rows][::-1]
        counts = [r["count"] for r in rows][::-1]
        bars = ax.barh(names, counts, color=COLOURS[1])
        ax.bar_label(bars, labels=[f"{c}（{_pct(r['share'])}）" for c, r in zip(counts, rows[::-1])], fontsize=8)
        ax.set_title("投诉分类构成")
        ax.set_xlabel("投诉量（件）")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if counts:
            ax.set_xlim(0, max(counts) * 1.3)
    return _render(draw)


def on_time_per_urgency(figures: dict[str, Any]) -> bytes:
    on_time = figures["on_time"]
    urgencies = sorted(set(on_time["response"]["per_urgency"]) | set(on_time["resolution"]["per_urgency"]))

    def rate(kind: str, u: str) -> float:
        value = on_time[kind]["per_urgency"].get(u, {}).get("rate")
        return 0.0 if value is None else value * 100

    def draw(fig, ax):
        xs = range(len(urgencies))
        w = 0.38
        a = ax.bar([x - w / 2 for x in xs], [rate("response", u) for u in urgencies], w, label="首次响应及时率",
                   color=COLOURS[0])
        b = ax.bar([x + w / 2 for x in xs], [rate("resolution", u) for u in urgencies], w, label="处理完结及时率",
                   color=COLOURS[2])
        ax.bar_label(a, fmt="%.1f%%", fontsize=8)
        ax.bar_label(b, fmt="%.1f%%", fontsize=8)
        ax.set_xticks(list(xs), [labels.URGENCY.get(u, u) for u in urgencies])
        ax.set_ylim(0, 125)
        ax.set_ylabel("及时率（%）")
        ax.set_title("各紧急程度及时率")
        ax.legend(loc="upper center", ncols=2, fontsize=8, frameon=False)
    return _render(draw)


def satisfaction_distribution(figures: dict[str, Any]) -> bytes:
    dims = figures["satisfaction"]["dimensions"]

    def draw(fig, ax):
        w = 0.26
        for i, (dim, data) in enumerate(dims.items()):
            counts = [data["distribution"][str(s)] for s in range(1, 6)]
            ax.bar([s + (i - 1) * w for s in range(1, 6)], counts, w, label=data["label"], color=COLOURS[i])
        ax.set_xticks(range(1, 6), [f"{s} 分" for s in range(1, 6)])
        ax.set_ylabel("评价数")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("满意度评分分布")
        ax.legend(fontsize=8)
    return _render(draw)


CHARTS = {"volume_per_day": ("每日投诉量", volume_per_day), "category": ("投诉分类构成", category_breakdown),
          "on_time": ("各紧急程度及时率", on_time_per_urgency),
          "satisfaction": ("满意度评分分布", satisfaction_distribution)}


def all_charts(figures: dict[str, Any]) -> dict[str, bytes]:
    return {name: draw(figures) for name, (_, draw) in CHARTS.items()}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"
