#!/usr/bin/env python3
"""The soak's samples, verdict and chart (bench/soak.sh); Python's standard library only.

    soak_report.py OUT --minutes M --step S --rate R [--capacity C] [--after-kb K] --commit C --machine M
    soak_report.py --progress OUT ELAPSED_S RSS_KB      (one line while the soak runs)

Reads OUT/rss.csv (the gateway's VmRSS at the end of each interval) and OUT/intervals.jsonl
(`shep bench run --interval-log`: one line per interval), writes OUT/soak.csv, OUT/soak.json and
OUT/soak.svg, prints the verdict and exits 1 when it fails.
"""

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time

WARMUP_STEPS = 5
WINDOW_STEPS = 10
RSS_GROWTH = 1.10
P99_GROWTH = 1.20
HELD = 0.95


def intervals(path, step):
    """Interval lines by their index (elapsed / step, rounded); a short tail after the last full
    interval (the run draining) is left out."""
    by_index = {}
    if not os.path.exists(path):
        return by_index
    with open(path) as lines:
        for line in lines:
            line = line.strip()
            if not line:
                continue
            interval = json.loads(line)
            if interval["seconds"] < step / 2:
                continue
            by_index[round(interval["elapsed_s"] / step)] = interval
    return by_index


def progress(out, elapsed, rss_kb):
    last = ""
    path = os.path.join(out, "intervals.jsonl")
    if os.path.exists(path):
        with open(path) as lines:
            rows = [line for line in lines if line.strip()]
        if rows:
            i = json.loads(rows[-1])
            last = (f"  last interval: {i['ok'] / max(i['seconds'], 1e-9):.0f} ok/s, errors {i['errors']}, "
                    f"p50 {i['p50_us'] / 1000:.2f} ms, p99 {i['p99_us'] / 1000:.2f} ms")
    print(f"  {int(elapsed):>5} s  RSS {int(rss_kb) / 1024:7.1f} MiB{last}", flush=True)


def nice(top):
    """A round axis maximum at or above `top`, and its tick step (at most six ticks)."""
    if top <= 0:
        return 1.0, 0.25
    magnitude = 10 ** (math.floor(math.log10(top)) - 1)
    for factor in (1, 2, 2.5, 5, 10, 20, 25, 50, 100):
        step = magnitude * factor
        if math.ceil(top / step) <= 6:
            return math.ceil(top / step) * step, step
    return top, top


def log_ticks(low, high):
    """1-2-5 ticks from below `low` to above `high`."""
    ticks, decade = [], 10 ** math.floor(math.log10(low))
    while not ticks or ticks[-1] < high:
        for factor in (1, 2, 5):
            if decade * factor * 5 > low or not ticks:
                ticks.append(decade * factor)
        decade *= 10
    first = max(i for i, tick in enumerate(ticks) if tick <= low) if ticks[0] <= low else 0
    return ticks[first:]


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def panel(svg, top, title, unit, rows, series, windows, limits, marks, minutes, log=False):
    """One chart: `series` is [(label, key, colour, dashed)] drawn over `rows`; `marks` are the
    windows' summaries, [(start minute, end minute, value)]. `log`: a logarithmic value axis, so
    one slow interval does not flatten all the others."""
    left, width, height = 70, 800, 210
    values = [row[key] for _, key, _, _ in series for row in rows if row.get(key)]
    values += [value for _, value in limits]
    if log:
        ticks = log_ticks(min(values or [1]), max(values or [1]))
        low, high = math.log10(ticks[0]), math.log10(ticks[-1])

        def y(value):
            value = max(value, ticks[0])
            return top + height - height * (math.log10(value) - low) / (high - low)
    else:
        y_max, y_step = nice(max(values or [1]) * 1.08)
        ticks = [y_step * i for i in range(round(y_max / y_step) + 1)]

        def y(value):
            return top + height - height * value / y_max

    def x(minute):
        return left + width * minute / minutes

    svg.append(f'<text x="{left}" y="{top - 10}" font-weight="bold">{esc(title)}</text>')
    for label, start, end, fill in windows:
        svg.append(f'<rect x="{x(start):.1f}" y="{top}" width="{x(end) - x(start):.1f}" height="{height}" '
                   f'fill="{fill}"/>')
        svg.append(f'<text x="{(x(start) + x(end)) / 2:.1f}" y="{top + 14}" text-anchor="middle" '
                   f'font-size="11" fill="#555">{esc(label)}</text>')
    for tick in ticks:
        svg.append(f'<line x1="{left}" x2="{left + width}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">{tick:g}</text>')
    x_step = max(1, round(minutes / 12))
    minute = 0
    while minute <= minutes:
        svg.append(f'<text x="{x(minute):.1f}" y="{top + height + 15}" text-anchor="middle" font-size="11">'
                   f'{minute:g}</text>')
        minute += x_step
    svg.append(f'<text x="{left + width / 2}" y="{top + height + 30}" text-anchor="middle" font-size="11">'
               f'minutes</text>')
    svg.append(f'<text x="16" y="{top + height / 2}" font-size="11" transform="rotate(-90 16 {top + height / 2})" '
               f'text-anchor="middle">{esc(unit)}</text>')
    svg.append(f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#888"/>')
    for label, value in limits:
        svg.append(f'<line x1="{left}" x2="{left + width}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                   f'stroke="#c0392b" stroke-dasharray="6 4"/>')
        svg.append(f'<text x="{left + width - 4}" y="{y(value) - 4:.1f}" text-anchor="end" font-size="11" '
                   f'fill="#c0392b">{esc(label)}</text>')
    for start, end, value in marks:
        svg.append(f'<line x1="{x(start):.1f}" x2="{x(end):.1f}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                   f'stroke="#333" stroke-width="1.5"/>')
    legend_x = left
    for label, key, colour, dashed in series:
        points = [(row["minute"], row[key]) for row in rows if row.get(key)]
        if not points:
            continue
        path = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in points)
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        svg.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        # Below the axis, where no line can run under it.
        legend_y = top + height + 30
        svg.append(f'<line x1="{legend_x}" x2="{legend_x + 18}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
                   f'stroke="{colour}" stroke-width="2"{dash}/>')
        svg.append(f'<text x="{legend_x + 22}" y="{legend_y}" font-size="11">{esc(label)}</text>')
        legend_x += 30 + 7 * len(label)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--progress":
        progress(*sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--minutes", type=int, required=True)
    parser.add_argument("--step", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--capacity", default="")
    parser.add_argument("--after-kb", default="")
    parser.add_argument("--commit", default="")
    parser.add_argument("--machine", default="")
    parser.add_argument("--capped-at", default="", help="seconds: the load was stopped, RSS beyond the cap")
    parser.add_argument("--max-rss-mib", default="")
    args = parser.parse_args()
    out, step = args.out, args.step

    with open(os.path.join(out, "rss.csv")) as rss_file:
        rss = {int(row["elapsed_s"]) // step: int(row["rss_kb"]) for row in csv.DictReader(rss_file)}
    submits = intervals(os.path.join(out, "intervals.jsonl"), step)
    lookups = intervals(os.path.join(out, "lookups.jsonl"), step)
    capped = int(args.capped_at) if args.capped_at else None
    if capped is None:
        with open(os.path.join(out, "report.json")) as report_file:
            report = json.load(report_file)
    else:
        # The load was stopped before `shep bench` wrote its report: its intervals tell the same.
        done = [i for i in submits.values()]
        ok = sum(i["ok"] for i in done)
        seconds = sum(i["seconds"] for i in done) or 1
        report = {"ok": ok, "errors": {"interval errors": e} if (e := sum(i["errors"] for i in done)) else {},
                  "throughput": ok / seconds}

    rows = []
    for n in sorted(rss):
        row = {"elapsed_s": n * step, "minute": n * step / 60, "rss_mib": rss[n] / 1024}
        interval = submits.get(n)
        if interval is not None:
            row.update(ok=interval["ok"], errors=interval["errors"],
                       throughput=interval["ok"] / interval["seconds"],
                       p50_ms=interval["p50_us"] / 1000, p99_ms=interval["p99_us"] / 1000)
        if n in lookups:
            row["lookup_p99_ms"] = lookups[n]["p99_us"] / 1000
        rows.append(row)
    columns = ["elapsed_s", "minute", "rss_mib", "ok", "errors", "throughput", "p50_ms", "p99_ms", "lookup_p99_ms"]
    with open(os.path.join(out, "soak.csv"), "w", newline="") as csv_file:
        writer = csv.DictWriter(csv_file, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: (f"{value:.3f}" if isinstance(value, float) else value)
                             for key, value in row.items()})

    steps = (capped if capped is not None else args.minutes * 60) // step
    first = range(WARMUP_STEPS + 1, WARMUP_STEPS + WINDOW_STEPS + 1)
    last = range(steps - WINDOW_STEPS + 1, steps + 1)

    def window(indices, key, summary):
        values = [row[key] for row in rows if round(row["elapsed_s"] / step) in indices and key in row]
        return (summary(values), len(values)) if values else (None, 0)

    rss_first, rss_n1 = window(first, "rss_mib", statistics.mean)
    rss_last, rss_n2 = window(last, "rss_mib", statistics.mean)
    p99_first, p99_n1 = window(first, "p99_ms", statistics.mean)
    p99_last, p99_n2 = window(last, "p99_ms", statistics.mean)
    errors = sum(report["errors"].values())
    held = report["throughput"] / args.rate
    checks = []
    if rss_first and rss_last and min(rss_n1, rss_n2) >= WINDOW_STEPS // 2:
        ratio = rss_last / rss_first
        checks.append(("memory flat", ratio <= RSS_GROWTH,
                       f"mean RSS {rss_first:.1f} MiB -> {rss_last:.1f} MiB ({ratio:.2f}x, at most {RSS_GROWTH:.2f}x)"))
    else:
        checks.append(("memory flat", False, "too few RSS samples in the windows"))
    if p99_first and p99_last and min(p99_n1, p99_n2) >= WINDOW_STEPS // 2:
        ratio = p99_last / p99_first
        checks.append(("p99 stable", ratio <= P99_GROWTH,
                       f"mean interval p99 {p99_first:.2f} ms -> {p99_last:.2f} ms ({ratio:.2f}x, at most {P99_GROWTH:.2f}x)"))
    else:
        checks.append(("p99 stable", False, "too few intervals in the windows"))
    checks.append(("load held", errors == 0 and held >= HELD,
                   f"{report['ok']} ok, {errors} failed ({report['errors'] or 'none'}), "
                   f"{report['throughput']:.0f}/s of {args.rate:.0f}/s offered ({held:.1%})"))
    if capped is not None:
        checks.insert(0, ("memory bounded", False,
                          f"resident beyond MAX_RSS_MIB={args.max_rss_mib} MiB after {capped / 60:.1f} min: load stopped"))
    passed = all(ok for _, ok, _ in checks)

    minutes_of = lambda steps_: steps_ * step / 60  # noqa: E731
    scaled = "" if args.minutes >= 30 else f" (scaled by {args.minutes}/30 for a {args.minutes}-minute run)"
    print(f"soak: {args.minutes} min at {args.rate:.0f} submissions/s"
          + (f" (half of {args.capacity}/s measured)" if args.capacity else "") + f", commit {args.commit}")
    print(f"  windows: minutes {minutes_of(WARMUP_STEPS):.1f}-{minutes_of(WARMUP_STEPS + WINDOW_STEPS):.1f} and "
          f"{minutes_of(steps - WINDOW_STEPS):.1f}-{minutes_of(steps):.1f}, a sample each {step} s{scaled}")
    for name, ok, text in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {text}")
    if args.after_kb:
        print(f"  RSS 5 s after the load: {int(args.after_kb) / 1024:.1f} MiB")
    print(f"  samples: {os.path.join(out, 'soak.csv')}, chart: {os.path.join(out, 'soak.svg')}")
    print(f"verdict: {'PASS' if passed else 'FAIL'}")

    summary = {
        "minutes": args.minutes, "step_s": step, "rate": args.rate, "capacity": args.capacity or None,
        "commit": args.commit, "machine": args.machine, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rss_first_mib": rss_first, "rss_last_mib": rss_last, "p99_first_ms": p99_first, "p99_last_ms": p99_last,
        "rss_after_load_mib": int(args.after_kb) / 1024 if args.after_kb else None,
        "report": report, "checks": [{"name": n, "pass": ok, "detail": t} for n, ok, t in checks],
        "pass": passed,
    }
    with open(os.path.join(out, "soak.json"), "w") as json_file:
        json.dump(summary, json_file, indent=2)

    windows = [("warm-up", 0, minutes_of(WARMUP_STEPS), "#eeeeee"),
               ("first window", minutes_of(WARMUP_STEPS), minutes_of(WARMUP_STEPS + WINDOW_STEPS), "#e3eefa"),
               ("last window", minutes_of(steps - WINDOW_STEPS), minutes_of(steps), "#e3eefa")]
    height = 630 + 14 * len(checks)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="900" height="{height}" font-family="sans-serif" '
           'font-size="13">', f'<rect width="900" height="{height}" fill="white"/>']
    title = f"shep-sim soak: {args.minutes} min at {args.rate:.0f} submissions/s, commit {args.commit}"
    subtitle = (f"{summary['date']}; open loop, Ed25519 envelopes signed during the run, a provider acking; "
                "embedded redb journal")
    svg.append(f'<text x="20" y="24" font-size="15" font-weight="bold">{esc(title)}</text>')
    svg.append(f'<text x="20" y="40" font-size="11" fill="#555">{esc(subtitle)}</text>')
    svg.append(f'<text x="20" y="54" font-size="11" fill="#555">{esc(args.machine)}</text>')
    first_span = (minutes_of(WARMUP_STEPS), minutes_of(WARMUP_STEPS + WINDOW_STEPS))
    last_span = (minutes_of(steps - WINDOW_STEPS), minutes_of(steps))

    def marks(first_value, last_value):
        return [(*span, value) for span, value in ((first_span, first_value), (last_span, last_value))
                if value is not None]

    panel(svg, 80, "gateway resident memory (VmRSS; black: mean of each window)", "MiB", rows,
          [("RSS", "rss_mib", "#1f77b4", False)], windows,
          [(f"first window x{RSS_GROWTH:.2f}", rss_first * RSS_GROWTH)] if rss_first else [],
          marks(rss_first, rss_last), args.minutes)
    series = [("p99 submit", "p99_ms", "#d62728", False), ("p50 submit", "p50_ms", "#ff9896", False)]
    if lookups:
        series.append(("p99 lookup", "lookup_p99_ms", "#2ca02c", True))
    panel(svg, 360, f"Submit latency per {step}-s interval, log scale (black: mean p99 of each window)", "ms",
          rows, series, windows, [(f"first window x{P99_GROWTH:.1f}", p99_first * P99_GROWTH)] if p99_first else [],
          marks(p99_first, p99_last), args.minutes, log=True)
    for line, (name, ok, text) in enumerate(checks):
        svg.append(f'<text x="20" y="{620 + 14 * line}" font-size="11">{esc(f"{name}: {text}")} '
                   f'<tspan font-weight="bold" fill="{"#1a7f37" if ok else "#c0392b"}">'
                   f'{"PASS" if ok else "FAIL"}</tspan></text>')
    svg.append("</svg>")
    with open(os.path.join(out, "soak.svg"), "w") as svg_file:
        svg_file.write("\n".join(svg) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
