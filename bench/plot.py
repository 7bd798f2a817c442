"""Fidelity-versus-qubits plot as a self-contained SVG (no plotting dependency).

Why hand-written SVG: the plot goes into a JSON download, the admin and the API, must be
byte-for-byte reproducible from the reports it shows, and matplotlib is not a dependency of
the server. x is the workload's qubit count on a log2 axis (2 … 100), y the report's headline
``fidelity`` on [0, 1]; each report is one series (GHZ points joined by a line, Bell and
depth_stress as markers), the 0.5 genuine-entanglement line is dashed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 60, 170, 30, 50
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MARKERS = {"GHZ_SCALING": "circle", "BELL_STATE": "square", "DEPTH_STRESS": "diamond"}


def _x(qubits: float, lo: float, hi: float) -> float:
    span = math.log2(hi) - math.log2(lo) or 1.0
    return LEFT + (math.log2(qubits) - math.log2(lo)) / span * (WIDTH - LEFT - RIGHT)


def _y(fidelity: float) -> float:
    return TOP + (1.0 - min(1.0, max(0.0, fidelity))) * (HEIGHT - TOP - BOTTOM)


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>'
    if kind == "diamond":
        return (f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} '
                f'{x - 5:.1f},{y:.1f}" fill="{colour}"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'


def series_label(report: Mapping[str, Any]) -> str:
    label = str(report.get("backend_id", "?"))
    if report.get("dev_mode"):
        label += " (DEV MODE)"
    return label


def fidelity_vs_qubits_svg(reports: Sequence[Mapping[str, Any]], title: str = "Fidelity vs qubits") -> str:
    """One SVG document plotting every report's workloads (see the module docstring)."""
    points = [row for r in reports for row in r.get("workloads", [])]
    qubits = [int(row["qubits"]) for row in points] or [2, 100]
    lo, hi = min(qubits + [2]), max(qubits + [10])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, _y(0.0), _y(1.0)
    parts.append(f'<line x1="{x0}" y1="{y0:.1f}" x2="{x1}" y2="{y0:.1f}" stroke="black"/>')
    parts.append(f'<line x1="{x0}" y1="{y0:.1f}" x2="{x0}" y2="{y1:.1f}" stroke="black"/>')
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        parts.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{x0 - 8}" y="{y + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
    ticks = sorted({q for q in (2, 5, 10, 20, 50, 100, *qubits) if lo <= q <= hi})
    for q in ticks:
        x = _x(q, lo, hi)
        parts.append(f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y0 + 4:.1f}" stroke="black"/>')
        parts.append(f'<text x="{x:.1f}" y="{y0 + 16:.1f}" text-anchor="middle">{q}</text>')
    half = _y(0.5)
    parts.append(f'<line x1="{x0}" y1="{half:.1f}" x2="{x1}" y2="{half:.1f}" stroke="#888" '
                 f'stroke-dasharray="6,4"/>')
    parts.append(f'<text x="{x1 - 2}" y="{half - 4:.1f}" text-anchor="end" fill="#666">'
                 f'0.5: genuine entanglement</text>')
    parts.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{HEIGHT - 12}" text-anchor="middle">qubits (log scale)</text>')
    parts.append(f'<text x="16" y="{(y0 + y1) / 2:.0f}" text-anchor="middle" '
                 f'transform="rotate(-90 16 {(y0 + y1) / 2:.0f})">fidelity (headline metric)</text>')
    for index, report in enumerate(reports):
        colour = COLOURS[index % len(COLOURS)]
        rows = list(report.get("workloads", []))
        ghz = sorted((r for r in rows if r.get("type") == "GHZ_SCALING"), key=lambda r: r["qubits"])
        if len(ghz) > 1:
            path = " ".join(f"{_x(r['qubits'], lo, hi):.1f},{_y(float(r['fidelity'])):.1f}" for r in ghz)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for row in rows:
            x, y = _x(int(row["qubits"]), lo, hi), _y(float(row["fidelity"]))
            shape = _marker(MARKERS.get(str(row.get("type")), "circle"), x, y, colour)
            tip = f"{row.get('id')}: {float(row['fidelity']):.4f}"
            parts.append(f"<g>{shape}<title>{escape(tip)}</title></g>")
        ly = TOP + 16 * index + 10
        parts.append(f'<rect x="{x1 + 12}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
        label = series_label(report)
        if report.get("id"):
            label += f" {str(report['id'])[:8]}"
        parts.append(f'<text x="{x1 + 26}" y="{ly + 1}">{escape(label)}</text>')
    ly = TOP + 16 * len(reports) + 20
    for offset, (kind, name) in enumerate((("circle", "GHZ"), ("square", "Bell"), ("diamond", "mirror"))):
        parts.append(_marker(kind, x1 + 17, ly + 16 * offset, "#444"))
        parts.append(f'<text x="{x1 + 26}" y="{ly + 16 * offset + 4}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
