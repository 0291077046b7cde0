#!/usr/bin/env python3
"""Turns one run of scripts/bench.sh into a Markdown report and an SVG chart.

Reads the run's work folder, which the script fills with:
  results       one `BENCH key=value ...` line per wrk run (from the wrk
                scripts' done(), plus target=, phase=, store_errors= and
                store_calls= added by the script);
  NAME.cmd.before / NAME.cmd.after
                `INFO commandstats` around each measured scenario;
  facts         `key=value` lines: settings, machine, RSS, soak samples.

Writes the Markdown to stdout and to --markdown, the chart to --svg.
Standard library only, so it runs wherever python3 does.
"""

import argparse
import math
import os
import re
import sys
from html import escape

# How each scenario is named in the report, in the order the script runs them.
LABELS = {
    "reference_first": "reference, first: POST /ref, one SETEX",
    "send": "send: POST /v1/otp, fresh phone",
    "verify_right": "verify, right code: POST /v1/otp/verify",
    "verify_wrong": "verify, wrong code: POST /v1/otp/verify",
    "reference": "reference, last: POST /ref, one SETEX",
}
SHORT = {
    "reference_first": "ref (first)",
    "send": "send",
    "verify_right": "verify right",
    "verify_wrong": "verify wrong",
    "reference": "ref (last)",
}
ORDER = ["reference_first", "send", "verify_right", "verify_wrong", "reference"]
# The reference runs before and after otpd's scenarios; the yardstick is the
# two together, so load that comes or goes during the run weighs on both sides.
REFERENCES = ["reference_first", "reference"]

# The targets.
RPS_FLOOR = 0.80  # of the reference's req/s
P99_CEILING = 1.25  # times the reference's p99
RSS_CEILING_MB = 50
RSS_AFTER_REQUESTS = 1_000_000
SOAK_SECONDS = 300

# The bench's own `INFO commandstats` snapshot shows up in the next one.
IGNORED_COMMANDS = {"info"}
# Below this many calls per request a command is another client's (the Redis
# may be shared): left out of the by-command list, still in the totals.
NOISE_PER_REQUEST = 0.005
# Round trips are otpd's store calls (`otpd_store_calls_total`) over the
# requests wrk counted; requests in flight as a run starts or ends can tip
# the ratio a little either way.
ROUND_TRIP_TOLERANCE = 0.05


def parse_kv(line):
    return dict(re.findall(r"(\w+)=(\S*)", line))


def read_results(work):
    runs = []
    with open(os.path.join(work, "results")) as f:
        for line in f:
            if line.startswith("BENCH "):
                runs.append(parse_kv(line))
    return runs


def read_facts(work):
    facts, soak = {}, []
    path = os.path.join(work, "facts")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if "=" not in line:
                    continue
                key, value = line.split("=", 1)
                if key == "soak_sample":
                    soak.append(parse_kv(value.replace(",", " ")))
                else:
                    facts[key] = value
    return facts, soak


def commandstats(path):
    calls = {}
    if not os.path.exists(path):
        return calls
    with open(path) as f:
        for line in f:
            m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line.strip())
            if m:
                calls[m.group(1).lower()] = int(m.group(2))
    return calls


def command_deltas(work, name):
    before = commandstats(os.path.join(work, f"{name}.cmd.before"))
    after = commandstats(os.path.join(work, f"{name}.cmd.after"))
    deltas = {}
    for cmd, n in after.items():
        d = n - before.get(cmd, 0)
        if d > 0 and cmd not in IGNORED_COMMANDS:
            deltas[cmd] = d
    return deltas


def num(run, key, default=0.0):
    try:
        return float(run.get(key, default))
    except ValueError:
        return default


def fmt_ratio(x):
    return "n/a" if x is None or math.isnan(x) else f"{x:.2f}"


def status_mix(run):
    """`202: 100.0 %` or `422: 97.1 %, 429: 2.9 %`, from the statuses field."""
    total = num(run, "requests")
    parts = []
    for item in filter(None, run.get("statuses", "").split(",")):
        code, n = item.split(":")
        share = 100.0 * int(n) / total if total else 0.0
        parts.append(f"{code}: {share:.1f} %")
    extra = []
    if int(num(run, "socket_errors")):
        extra.append(f"{int(num(run, 'socket_errors'))} socket errors")
    if int(num(run, "timeouts")):
        extra.append(f"{int(num(run, 'timeouts'))} timeouts")
    if int(num(run, "exhausted")):
        extra.append(f"{int(num(run, 'exhausted'))} codes reused (file too short)")
    if int(num(run, "store_errors")):
        extra.append(f"{int(num(run, 'store_errors'))} store errors")
    return ", ".join(parts + extra) or "none"


def per_request(deltas, requests):
    if not requests:
        return None
    return {
        "total": sum(deltas.values()) / requests,
        "detail": ", ".join(
            f"{c.upper()} {n / requests:.2f}"
            for c, n in sorted(deltas.items(), key=lambda kv: -kv[1])
            if n / requests >= NOISE_PER_REQUEST
        ),
    }


def yes_no(ok):
    """True, False, or None for a target this run didn't measure."""
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**not met**"


def build(work):
    runs = read_results(work)
    facts, soak = read_facts(work)
    scenarios = {r["scenario"]: r for r in runs if r.get("phase") == "scenario"}
    refs = [scenarios[n] for n in REFERENCES if n in scenarios]

    def mean(key):
        return sum(num(r, key) for r in refs) / len(refs) if refs else float("nan")

    ref_rps, ref_p99 = mean("rps"), mean("p99_ms")
    ref_requests = sum(num(r, "requests") for r in refs)
    ref_cpu_us = 1e6 * sum(num(r, "cpu_s", float("nan")) for r in refs) / ref_requests if ref_requests else float("nan")

    rows, checks, cmd_rows = [], [], []
    for name in ORDER:
        run = scenarios.get(name)
        if not run:
            continue
        rps, p50, p99 = num(run, "rps"), num(run, "p50_ms"), num(run, "p99_ms")
        rps_ratio = rps / ref_rps if ref_rps else float("nan")
        p99_ratio = p99 / ref_p99 if ref_p99 else float("nan")
        cmds = per_request(command_deltas(work, name), int(num(run, "requests")))
        requests = num(run, "requests")
        cpu_us = 1e6 * num(run, "cpu_s", float("nan")) / requests if requests else float("nan")
        cpu_cell = "n/a" if math.isnan(cpu_us) else f"{cpu_us:.0f} ({fmt_ratio(cpu_us / ref_cpu_us)}x)"
        run.update(rps_ratio=rps_ratio, p99_ratio=p99_ratio)
        trips = num(run, "store_calls") / requests if name not in REFERENCES and requests else 1.0
        cmd_cell = "n/a"
        if cmds:
            cmd_cell = f"{trips:.2f} ({cmds['total']:.2f} commands)"
            cmd_rows.append((name, cmds, trips))
        rows.append(
            f"| {LABELS[name]} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {fmt_ratio(rps_ratio)} | "
            f"{fmt_ratio(p99_ratio)} | {cpu_cell} | {status_mix(run)} | {cmd_cell} |"
        )
        if name not in REFERENCES:
            checks.append(
                (
                    f"{SHORT[name]}: req/s >= {RPS_FLOOR:.0%} of the reference's",
                    f"{rps_ratio:.0%} ({rps:,.0f} vs {ref_rps:,.0f})",
                    rps_ratio >= RPS_FLOOR,
                )
            )
            checks.append(
                (
                    f"{SHORT[name]}: p99 <= {P99_CEILING}x the reference's",
                    f"{p99_ratio:.2f}x ({p99:.2f} ms vs {ref_p99:.2f} ms)",
                    p99_ratio <= P99_CEILING,
                )
            )

    # One Redis round trip per send and per verify, as otpd counts its calls.
    for name, _, trips in cmd_rows:
        if name in REFERENCES:
            continue
        checks.append(
            (
                f"{SHORT[name]}: one Redis round trip per request",
                f"{trips:.2f} store calls per request",
                abs(trips - 1.0) <= ROUND_TRIP_TOLERANCE,
            )
        )

    hwm_mb = int(facts.get("vmhwm_kb", 0)) / 1024
    served = int(facts.get("otpd_requests", 0))
    if hwm_mb:
        enough = served >= RSS_AFTER_REQUESTS
        checks.append(
            (
                f"peak RSS < {RSS_CEILING_MB} MB after {RSS_AFTER_REQUESTS:,} requests",
                f"{hwm_mb:.1f} MB after {served:,} requests"
                + ("" if enough else " (fewer requests than the target asks for)"),
                (hwm_mb < RSS_CEILING_MB) if enough else (False if hwm_mb >= RSS_CEILING_MB else None),
            )
        )
    if soak:
        rss = [int(s.get("rss_kb", 0)) / 1024 for s in soak]
        # Flat: after the first minute (allocator warm-up), RSS moves by less
        # than 10 % of where it stood then.
        settled = [r for s, r in zip(soak, rss) if int(s.get("t", 0)) >= 60]
        since = "after the first minute" if settled else "over the whole soak"
        settled = settled or rss
        drift = (max(settled) - min(settled)) / min(settled) if min(settled) else float("inf")
        long_enough = int(facts.get("soak_seconds", 0)) >= SOAK_SECONDS
        checks.append(
            (
                "RSS flat over a 5-minute soak",
                f"{min(rss):.1f} to {max(rss):.1f} MB over {facts.get('soak_seconds')} s; "
                f"{drift:.1%} drift {since}"
                + ("" if long_enough else " (soak shorter than 5 minutes)"),
                (drift < 0.10) if long_enough else (False if drift >= 0.10 else None),
            )
        )
    else:
        checks.append(("RSS flat over a 5-minute soak", "not run (set SOAK=300)", None))

    out = []
    out.append("# otpd benchmark results")
    out.append("")
    out.append(
        f"Run {facts.get('date', '?')} on commit `{facts.get('commit', '?')}`: "
        f"`DURATION={facts.get('duration', '?')}` s per scenario, wrk {facts.get('threads', '?')} threads, "
        f"{facts.get('connections', '?')} connections; otpd with the console sender, every limit 0, "
        f"Redis {facts.get('redis_version', '?')} at `{facts.get('redis_url', '?')}`"
        + (" (a private instance for this run)." if facts.get("redis_private") else " (shared).")
    )
    out.append("")
    out.append(
        f"Machine: {facts.get('nproc', '?')} CPUs ({facts.get('cpu', '?')}), "
        f"{facts.get('mem_total', '?')} memory; wrk, otpd, the reference and Redis share it. "
        f"Load average before the scenarios: {facts.get('load_before', '?')} (other work on the machine "
        "lowers req/s and raises latency for every scenario, the reference's included)."
    )
    out.append("")
    out.append(
        "| scenario | req/s | p50 ms | p99 ms | req/s vs ref | p99 vs ref | server CPU µs/req (vs ref) "
        "| responses | Redis round trips per request |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---|---|")
    out.extend(rows)
    out.append("")
    out.append(
        "Server CPU is the user + system time the serving process (otpd or the reference) used during "
        "the scenario, per request answered: the cost of a request, which other load on the machine "
        "skews less than req/s."
    )
    out.append("")
    out.append(
        "Ratios are to the reference measured in the same run, first and last: to the mean of its two "
        "req/s and of its two p99s, and to its CPU per request over both. Round trips per request are "
        "otpd's store calls over the scenario (`otpd_store_calls_total`) divided by the requests wrk "
        "completed; the reference makes one SETEX per request by construction. Commands come from "
        "`INFO commandstats` deltas, divided the same way: Redis counts the commands a script runs "
        "(GET, DEL, ...) as well as the EVALSHA that ran it, so they cost no round trip of their own. "
        "On a shared Redis other clients' commands show up there too; the by-command list leaves out "
        f"those under {NOISE_PER_REQUEST} per request (`PRIVATE_REDIS=<port>` gives a Redis of the "
        "run's own)."
    )
    if cmd_rows:
        out.append("")
        out.append("| scenario | commands per request, by command |")
        out.append("|---|---|")
        for name, cmds, _ in cmd_rows:
            out.append(f"| {SHORT[name]} | {cmds['detail']} |")
    out.append("")
    out.append(
        f"otpd memory: peak RSS (VmHWM) {hwm_mb:.1f} MB, RSS at the end {int(facts.get('vmrss_kb', 0)) / 1024:.1f} MB, "
        f"after {served:,} requests served in this run (the measured otpd's: its scenarios and the soak; "
        "the code maker served the batch that made the verify codes)."
    )
    if soak:
        out.append("")
        out.append(f"Soak: the send scenario for {facts.get('soak_seconds')} s, RSS sampled every 10 s:")
        out.append("")
        out.append("| t (s) | RSS (MB) | requests otpd has served in the run so far |")
        out.append("|---:|---:|---:|")
        for s in soak:
            out.append(
                f"| {s.get('t')} | {int(s.get('rss_kb', 0)) / 1024:.1f} | {int(s.get('requests', 0)):,} |"
            )
        soak_run = next((r for r in runs if r.get("phase") == "soak"), None)
        if soak_run:
            out.append("")
            out.append(
                f"Soak throughput {num(soak_run, 'rps'):,.0f} req/s, p50 {num(soak_run, 'p50_ms'):.2f} ms, "
                f"p99 {num(soak_run, 'p99_ms'):.2f} ms; responses {status_mix(soak_run)}."
            )
    out.append("")
    out.append("## Targets")
    out.append("")
    out.append("| target | measured | |")
    out.append("|---|---|---|")
    for what, measured, ok in checks:
        out.append(f"| {what} | {measured} | {yes_no(ok)} |")
    out.append("")
    return "\n".join(out), scenarios, ref_rps, ref_p99


def svg_chart(scenarios, ref_rps, ref_p99, title, footer):
    """Two bar charts side by side: req/s (with the 80 % line) and p99 (with
    the 1.25x line). Plain SVG, no fonts or scripts beyond the defaults."""
    names = [n for n in ORDER if n in scenarios]
    width, height = 920, 410
    panel_w, top, bottom = 400, 80, 330
    colors = {name: "#8c8c8c" for name in REFERENCES}
    default_color = "#3b6ea5"

    def panel(x0, key, unit, fmt, line_value, line_label):
        values = [num(scenarios[n], key) for n in names]
        peak = max(values + [line_value if not math.isnan(line_value) else 0]) or 1
        scale = (bottom - top) / (peak * 1.15)
        bar_w = panel_w / max(len(names), 1) * 0.6
        gap = panel_w / max(len(names), 1)
        parts = [
            f'<text x="{x0 + panel_w / 2}" y="{top - 18}" text-anchor="middle" font-size="15" '
            f'font-weight="bold">{escape(unit)}</text>',
            f'<line x1="{x0}" y1="{bottom}" x2="{x0 + panel_w}" y2="{bottom}" stroke="#333"/>',
        ]
        for i, (n, v) in enumerate(zip(names, values)):
            x = x0 + i * gap + (gap - bar_w) / 2
            h = v * scale
            parts.append(
                f'<rect x="{x:.1f}" y="{bottom - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colors.get(n, default_color)}"><title>{escape(SHORT[n])}: {fmt(v)}</title></rect>'
            )
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{bottom - h - 6:.1f}" text-anchor="middle" '
                f'font-size="12">{fmt(v)}</text>'
            )
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{bottom + 18}" text-anchor="middle" '
                f'font-size="12">{escape(SHORT[n])}</text>'
            )
        if not math.isnan(line_value):
            y = bottom - line_value * scale
            parts.append(
                f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + panel_w}" y2="{y:.1f}" stroke="#c0392b" '
                f'stroke-dasharray="6,4"/>'
            )
            # The line's meaning goes under the panel title, where no bar can hide it.
            parts.append(
                f'<text x="{x0 + panel_w / 2}" y="{top}" text-anchor="middle" font-size="11" '
                f'fill="#c0392b">dashed line: {escape(line_label)}</text>'
            )
        return parts

    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="16">{escape(title)}</text>',
    ]
    body += panel(
        40, "rps", "requests per second (higher is better)", lambda v: f"{v:,.0f}",
        ref_rps * RPS_FLOOR if ref_rps else float("nan"), f"target: {RPS_FLOOR:.0%} of reference",
    )
    body += panel(
        480, "p99_ms", "p99 latency, ms (lower is better)", lambda v: f"{v:.2f}",
        ref_p99 * P99_CEILING if ref_p99 else float("nan"), f"target: {P99_CEILING}x reference",
    )
    body.append(
        f'<text x="{width / 2}" y="{height - 20}" text-anchor="middle" font-size="11" fill="#555">'
        f"{escape(footer)}</text>"
    )
    body.append("</svg>")
    return "\n".join(body) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", help="the run's work folder")
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--svg", required=True)
    args = parser.parse_args()

    markdown, scenarios, ref_rps, ref_p99 = build(args.work)
    facts, _ = read_facts(args.work)
    with open(args.markdown, "w") as f:
        f.write(markdown)
    title = f"otpd vs a one-SETEX reference, {facts.get('date', '')}, DURATION={facts.get('duration', '?')} s"
    with open(args.svg, "w") as f:
        footer = (
            f"wrk, {facts.get('threads', '?')} threads, {facts.get('connections', '?')} connections, "
            f"{facts.get('nproc', '?')} CPUs shared by all; grey: the reference handler, same run"
        )
        f.write(svg_chart(scenarios, ref_rps, ref_p99, title, footer))
    sys.stdout.write(markdown)


if __name__ == "__main__":
    main()
