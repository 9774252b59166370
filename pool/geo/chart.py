"""An SVG bar chart of the pool's hashrate share by country, one panel per period."""

from __future__ import annotations

from xml.sax.saxutils import escape

from pool.geo.report import Report

WIDTH = 760
BAR_HEIGHT = 18
GAP = 6
LABEL_WIDTH = 220
PANEL_HEAD = 46


def country_chart(report: Report, max_countries: int = 20, max_periods: int = 12) -> bytes:
    periods = report.periods[-max_periods:]
    parts: list[str] = []
    y = 40
    plot_width = WIDTH - LABEL_WIDTH - 90
    for period in periods:
        rows = sorted((r for r in period.rows if r.level == "country"), key=lambda r: -r.share_of_pool)
        shown, rest = rows[:max_countries], rows[max_countries:]
        bars = [(r.country_name, r.share_of_pool, r.folded) for r in shown]
        if rest:
            bars.append((f"{len(rest)} more countries", sum(r.share_of_pool for r in rest), True))
        top = max((share for _, share, _ in bars), default=0.0) or 1.0
        parts.append(f'<text x="10" y="{y + 20}" class="h">{escape(period.period.capitalize())} from '
                     f'{escape(period.period_start)}: share of pool hashrate by country'
                     f'{"" if period.complete else " (incomplete)"}</text>')
        coverage = ("pool share of network unknown" if period.pool_share_of_network is None
                    else f"pool = {period.pool_share_of_network * 100:.3f}% of network")
        parts.append(f'<text x="10" y="{y + 38}" class="s">{escape(coverage)}; geolocated '
                     f'{period.share_geolocated * 100:.1f}%</text>')
        y += PANEL_HEAD
        if not bars:
            parts.append(f'<text x="10" y="{y + 14}" class="s">no published data</text>')
            y += BAR_HEIGHT + GAP
        for name, share, folded in bars:
            width = max(1.0, plot_width * share / top)
            parts.append(f'<text x="{LABEL_WIDTH - 8}" y="{y + 14}" class="l">{escape(name)}</text>')
            parts.append(f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                         f'class="{"o" if folded else "b"}"/>')
            parts.append(f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 14}" class="v">'
                         f'{share * 100:.2f}%</text>')
            y += BAR_HEIGHT + GAP
        y += 14
    if not periods:
        parts.append(f'<text x="10" y="{y + 14}" class="s">no periods</text>')
        y += 30
    p = report.privacy
    parts.append(f'<text x="10" y="{y + 10}" class="s">Cells with fewer than {p.min_miners} miners or '
                 f'dominated by {p.dominance_n} miners (&gt; {p.dominance_percent:g}%) fold into Other.</text>')
    parts.append(f'<text x="10" y="{y + 28}" class="s">{escape(report.attribution)}</text>')
    height = y + 44
    style = ("<style>.h{font:bold 15px sans-serif}.s{font:12px sans-serif;fill:#444}"
             ".l{font:13px sans-serif;text-anchor:end}.v{font:12px sans-serif}"
             ".b{fill:#f7931a}.o{fill:#9a9a9a}</style>")
    title = f"Geostratum hashrate by country, {report.first} to {report.last}"
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">'
           f'<title>{escape(title)}</title>{style}<rect width="100%" height="100%" fill="#fff"/>'
           f'<text x="10" y="24" class="h">{escape(title)}</text>{"".join(parts)}</svg>\n')
    return svg.encode()
