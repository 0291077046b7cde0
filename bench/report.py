#!/usr/bin/env python3
"""Turns one run of scripts/bench.sh into a Markdown report and an SVG chart.

Reads the run's work folder, which the script fills with:
  results       one `BENCH key=value ...` line per wrk run (from the wrk
                scripts' done(), plus what the script measured around it:
                instance=, phase=, served=, store_calls=, store_errors=,
                events_kept=, events_dropped=, delivered=, cpu_s=,
                drain_cpu_s=, redis_cpu_s=, drain_redis_cpu_s=, wrk_cpu_s=,
                hook_cpu_s=, drain_s=, rss_kb=, hwm_kb=, all_store_calls=,
                cpu_ns=, drain_cpu_ns=);
  NAME.cmd.before / NAME.cmd.after
                `INFO commandstats` of Redis's masters around each scenario;
  facts         `key=value` lines: settings, machine, memory, soak samples.

Writes the Markdown to stdout and to --markdown, the chart to --svg.
Standard library only, so it runs wherever python3 does.
"""

import argparse
import math
import os
import re
import sys
from html import escape

INSTANCES = ["defaults", "off"]
INSTANCE_NAMES = {"defaults": "at the defaults", "off": "limits off"}
# otpd's scenarios, in the order the tables list them.
KINDS = ["send", "verify_right", "verify_wrong"]
KIND_LABELS = {
    "send": "send: POST /v1/otp, fresh phone",
    "verify_right": "verify, right code",
    "verify_wrong": "verify, wrong code",
}
KIND_SHORT = {"send": "send", "verify_right": "verify right", "verify_wrong": "verify wrong"}
# The references, each run first and last; the yardstick is the two runs
# together, so load that comes or goes during the run weighs on both sides.
REFERENCES = {
    "pool": ("ref_pool_first", "ref_pool_last"),
    "mux": ("ref_mux_first", "ref_mux_last"),
}
REF_LABELS = {
    "ref_pool_first": "pool, first: POST /ref, one SETEX through a bb8 pool",
    "ref_mux_first": "mux, first: POST /mux, one SETEX through one multiplexed connection",
    "ref_mux_last": "mux, last",
    "ref_pool_last": "pool, last",
}

# The targets.
VS_OFF_FLOOR = 0.85  # of the same scenario with limits off, req/s
RPS_FLOOR = 0.80  # of the pool reference's req/s
P99_CEILING = 1.25  # times the pool reference's p99
TRIPS = {"send": 2, "verify_right": 1, "verify_wrong": 1}  # store round trips per request, at most
MEMORY_CEILING = 400  # bytes of Redis per pending code
EVENT_CEILING_US = 15  # otpd CPU per event at full load
EVENT_PACED_FACTOR = 2  # at 1 % of load, at most this many times EVENT_CEILING_US
CODE_LIFE_S = 180  # otp.ttl_secs at its default, as the defaults instance runs
RSS_CEILING_MB = 50
RSS_AFTER_REQUESTS = 1_000_000
SOAK_SECONDS = 300

# What the keys a send leaves are, by kind (docs/operations.md lists them);
# a kind not named here is listed without a note.
KEY_KINDS = {
    "{…}": "the pending code, behind its phone's tally of sends",
    "{…}:sends": "the service's sends, `{global}:sends` (before the tally: each phone's sends)",
    "ip:{…}:sends": "the client's sends",
    "events:{…}": "the event outbox's streams",
}

# The bench's own INFO snapshots show up in the next one.
IGNORED_COMMANDS = {"info"}
# What the bench sends per shard each time it looks at an outbox.
BACKLOG_COMMANDS = {"exists", "xlen", "zcard"}
# Below this many calls per request a command is background work (the idle
# instance's event worker, another client of a shared Redis): left out of
# the by-command list, still in the totals.
NOISE_PER_REQUEST = 0.005
# Round trips are otpd's store calls over the requests wrk counted; requests
# in flight as a run starts or ends can tip the ratio a little either way.
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
    facts, soak, kinds, warnings = {}, [], [], []
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
                elif key == "memory_kind":
                    kinds.append(dict(part.split("=", 1) for part in value.split(",")))
                elif key == "warning":
                    warnings.append(value)
                else:
                    facts[key] = value
    return facts, soak, kinds, warnings


def commandstats(path):
    """Calls by command, summed over the nodes whose INFO is in the file."""
    calls = {}
    if not os.path.exists(path):
        return calls
    with open(path) as f:
        for line in f:
            m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line.strip())
            if m:
                cmd = m.group(1).lower()
                calls[cmd] = calls.get(cmd, 0) + int(m.group(2))
    return calls


def command_deltas(work, name, looks=0, shards=0):
    """Commands Redis ran between the two snapshots, less the bench's own:
    its INFO, and the EXISTS, XLEN and ZCARD of each shard at each look at
    the outbox while it drained."""
    before = commandstats(os.path.join(work, f"{name}.cmd.before"))
    after = commandstats(os.path.join(work, f"{name}.cmd.after"))
    deltas = {}
    for cmd, n in after.items():
        d = n - before.get(cmd, 0)
        if cmd in BACKLOG_COMMANDS:
            d -= looks * shards
        if d > 0 and cmd not in IGNORED_COMMANDS:
            deltas[cmd] = d
    return deltas


def num(run, key, default=0.0):
    try:
        return float(run.get(key, default))
    except (TypeError, ValueError):
        return default


def ratio(a, b):
    return a / b if b and not math.isnan(b) else float("nan")


def fmt_ratio(x):
    return "n/a" if x is None or math.isnan(x) else f"{x:.2f}"


def fmt_us(x):
    return "n/a" if math.isnan(x) else f"{x:.0f}"


def status_mix(run):
    """`202: 100.0 %` or `422: 97.1 %, 429: 2.9 %`, from the statuses field."""
    total = num(run, "requests")
    parts = []
    for item in filter(None, run.get("statuses", "").split(",")):
        code, n = item.split(":")
        share = 100.0 * int(n) / total if total else 0.0
        parts.append(f"{code}: {share:.1f} %")
    extra = []
    for key, what in [
        ("socket_errors", "socket errors"),
        ("timeouts", "timeouts"),
        ("exhausted", "codes used past their share (file too short)"),
        ("store_errors", "store errors"),
        ("events_dropped", "events dropped"),
    ]:
        if int(num(run, key)):
            extra.append(f"{int(num(run, key)):,} {what}")
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


class Run:
    """One scenario's figures, per request where that is what they mean."""

    def __init__(self, work, raw, shards):
        self.raw = raw
        self.name = raw["scenario"]
        self.requests = num(raw, "requests")
        self.rps = num(raw, "rps")
        self.p50 = num(raw, "p50_ms")
        self.p99 = num(raw, "p99_ms")
        n = self.requests or float("nan")
        # CPU over the scenario and the outbox's drain after it: the events
        # its requests made are delivered then.
        self.cpu_us = 1e6 * (num(raw, "cpu_s", float("nan")) + num(raw, "drain_cpu_s")) / n
        self.redis_us = 1e6 * (num(raw, "redis_cpu_s", float("nan")) + num(raw, "drain_redis_cpu_s")) / n
        # What the rest of the machine spent on the scenario: wrk, and the
        # event endpoint (the reference's POST /hook) while otpd was measured.
        self.wrk_us = 1e6 * num(raw, "wrk_cpu_s", float("nan")) / n
        self.hook_us = 1e6 * num(raw, "hook_cpu_s", float("nan")) / n
        self.trips = num(raw, "store_calls") / n
        # Every caller's, the event worker's included.
        self.all_trips = num(raw, "all_store_calls", float("nan")) / n
        # The CPU again from the threads' schedstat, in ns: what a paced
        # run's few clock ticks can't resolve.
        self.cpu_ns_us = (num(raw, "cpu_ns", float("nan")) + num(raw, "drain_cpu_ns")) / 1e3 / n
        self.delivered = num(raw, "delivered") / n
        self.drain_s = num(raw, "drain_s")
        deltas = command_deltas(work, self.name, int(num(raw, "drain_looks")), shards)
        self.cmds = per_request(deltas, int(self.requests))
        self.unexpected = int(num(raw, "unexpected")) + int(num(raw, "exhausted"))


def mean_ref(runs):
    """The mean of a reference's two runs (req/s, p99) and its CPU per
    request over both."""
    runs = [r for r in runs if r]
    if not runs:
        return None
    total = sum(r.requests for r in runs) or float("nan")
    return {
        "rps": sum(r.rps for r in runs) / len(runs),
        "p50": sum(r.p50 for r in runs) / len(runs),
        "p99": sum(r.p99 for r in runs) / len(runs),
        "cpu_us": sum(r.cpu_us * r.requests for r in runs) / total,
        "redis_us": sum(r.redis_us * r.requests for r in runs) / total,
        "wrk_us": sum(r.wrk_us * r.requests for r in runs) / total,
    }


def ceiling(cpus, *us_per_request):
    """The req/s the machine's CPUs allow work of these µs per request, with
    every CPU busy all the time."""
    spent = sum(us_per_request)
    return cpus * 1e6 / spent if spent and not math.isnan(spent) else float("nan")


def build(work):
    raws = read_results(work)
    facts, soak, kinds, warnings = read_facts(work)
    shards = int(num(facts, "event_shards"))
    runs = {r["scenario"]: Run(work, r, shards) for r in raws if r.get("phase") == "scenario"}
    refs = {k: mean_ref([runs.get(n) for n in names]) for k, names in REFERENCES.items()}
    pool, mux = refs.get("pool"), refs.get("mux")
    cluster = facts.get("cluster") == "1"
    events_on = facts.get("events") == "1"

    out = []
    out.append("# otpd benchmark results")
    out.append("")
    out.append(
        f"Run {facts.get('date', '?')} on commit `{facts.get('commit', '?')}` "
        f"(`{facts.get('profile', '?')}` build; binaries {facts.get('bin_dir', '?')}): "
        f"`DURATION={facts.get('duration', '?')}` s per scenario, wrk {facts.get('threads', '?')} threads and "
        f"{facts.get('connections', '?')} connections, {int(num(facts, 'run_seconds')):,} s in all."
    )
    out.append("")
    redis_version = facts.get("redis_version", "?")
    private = facts.get("redis_private") == "yes"
    if cluster:
        out.append(
            f"Redis {redis_version}: otpd on a cluster of {facts.get('otpd_redis_masters', '?')} masters and "
            f"{int(num(facts, 'otpd_redis_nodes')) - int(num(facts, 'otpd_redis_masters'))} replicas started for "
            f"the run (`{facts.get('otpd_redis', '?')}`); the references on a single "
            + ("Redis of the run's own" if private else "shared Redis")
            + f" (`{facts.get('ref_redis', '?')}`), as in a run without the cluster: they are no cluster clients, "
            "and stay the same yardstick. Redis CPU is summed "
            "over every node, replicas included; commands and memory over the masters."
        )
    else:
        out.append(
            f"Redis {redis_version} at `{facts.get('otpd_redis', '?')}`, "
            + (
                "started for the run (no persistence), so its commands and CPU are the run's alone."
                if private
                else "shared: other clients' commands and CPU mix into Redis's figures."
            )
        )
    out.append("")
    out.append(
        f"Machine: {facts.get('nproc', '?')} CPUs ({facts.get('cpu', '?')}), "
        f"{facts.get('mem_total', '?')} memory; wrk, both otpd instances, the reference and Redis share it. "
        f"Load average before the run: {facts.get('load_before', '?')} (other work on the machine lowers req/s "
        "and raises latency for every scenario, the references' included)."
    )
    out.append("")
    out.append("## What runs")
    out.append("")
    out.append(
        "Two otpd instances run side by side on the same Redis, hash key and API key, each under its own key "
        "prefix; both print their SMS to /dev/null through the console sender, log at `warn`, and trust "
        "127.0.0.1 (where wrk connects from) as a proxy. "
        + (
            "Both send every event to the reference's `POST /hook`, which answers 204."
            if events_on
            else "Neither has an event endpoint (`EVENTS=0`)."
        )
    )
    out.append("")
    out.append(
        "- **defaults**: every limit at its default (resend cooldown 30 s, 5 sends per phone and 20 per client "
        "per 600 s, 60 verifies per client per minute, the guess budget, `otp.ttl_secs` 180, "
        "`otp.max_attempts` 5), but the service-wide budget raised so the run doesn't spend it: "
        f"`{facts.get('settings_defaults', '?')}`"
    )
    out.append(
        "- **limits off**: every limit 0 and the guess budget off; `otp.ttl_secs` and `otp.max_attempts` at "
        f"their defaults, so the protections are the only difference: `{facts.get('settings_off', '?')}`"
    )
    out.append(
        "- **code maker** (started for each verify scenario's batch of codes, under the verifying instance's "
        f"prefix, its console printing to a file): `{facts.get('settings_maker', '?')}`; making codes for "
        "the defaults instance it keeps the phone's cooldown and quota at their defaults, so its codes carry "
        "the phone's tally as that instance's own would"
    )
    out.append("")
    out.append(
        "Every request carries the API key (`Authorization: Bearer`) and a client address in "
        f"`X-Forwarded-For` that changes every {facts.get('per_client', '?')} requests, IPv4 addresses and "
        "IPv6 /64s in turn, from a range of the phase's own, so the per-client limits count but never refuse; "
        "every phone is fresh. The wrong-code scenario guesses each code "
        f"{facts.get('wrong_tries', '?')} times, under `otp.max_attempts` and the guess budget's 10 free "
        "guesses. Both instances get the same phones and clients in a scenario."
    )

    # --- References ---
    out.append("")
    out.append("## References")
    out.append("")
    out.append("| reference | req/s | p50 ms | p99 ms | server CPU µs/req | Redis CPU µs/req | responses |")
    out.append("|---|---:|---:|---:|---:|---:|---|")
    for name in ["ref_pool_first", "ref_mux_first", "ref_mux_last", "ref_pool_last"]:
        r = runs.get(name)
        if r:
            out.append(
                f"| {REF_LABELS[name]} | {r.rps:,.0f} | {r.p50:.2f} | {r.p99:.2f} | {fmt_us(r.cpu_us)} | "
                f"{fmt_us(r.redis_us)} | {status_mix(r.raw)} |"
            )
    for key, ref in refs.items():
        if ref:
            out.append(
                f"| **{key}, the two runs' mean** | **{ref['rps']:,.0f}** | {ref['p50']:.2f} | **{ref['p99']:.2f}** | "
                f"{fmt_us(ref['cpu_us'])} | {fmt_us(ref['redis_us'])} | |"
            )

    # --- otpd's two tables ---
    def table(instance):
        rows = []
        header = "| scenario | req/s | p50 ms | p99 ms |"
        align = "|---|---:|---:|---:|"
        if instance == "defaults":
            header += " vs limits off: req/s, p99 |"
            align += "---:|"
        header += (
            " vs pool: req/s, p99 | vs mux: req/s, p99 | otpd CPU µs/req | Redis CPU µs/req | "
            "store round trips/req | Redis commands/req | responses |"
        )
        align += "---:|---:|---:|---:|---:|---:|---|"
        rows += [header, align]
        for kind in KINDS:
            r = runs.get(f"{kind}_{instance}")
            if not r:
                continue
            cells = [KIND_LABELS[kind], f"{r.rps:,.0f}", f"{r.p50:.2f}", f"{r.p99:.2f}"]
            if instance == "defaults":
                off = runs.get(f"{kind}_off")
                cells.append(
                    f"{fmt_ratio(ratio(r.rps, off.rps))}, {fmt_ratio(ratio(r.p99, off.p99))}" if off else "n/a"
                )
            for ref in (pool, mux):
                cells.append(
                    f"{fmt_ratio(ratio(r.rps, ref['rps']))}, {fmt_ratio(ratio(r.p99, ref['p99']))}" if ref else "n/a"
                )
            cells.append(fmt_us(r.cpu_us) + (f" ({fmt_ratio(ratio(r.cpu_us, pool['cpu_us']))}x)" if pool else ""))
            cells.append(fmt_us(r.redis_us) + (f" ({fmt_ratio(ratio(r.redis_us, pool['redis_us']))}x)" if pool else ""))
            cells.append(f"{r.trips:.2f}")
            cells.append(f"{r.cmds['total']:.2f}" if r.cmds else "n/a")
            cells.append(status_mix(r.raw))
            rows.append("| " + " | ".join(cells) + " |")
        return rows

    for instance in INSTANCES:
        out.append("")
        out.append(f"## otpd {INSTANCE_NAMES[instance]}")
        out.append("")
        out.extend(table(instance))

    out.append("")
    out.append(
        "Ratios are to the same scenario with limits off, and to each reference's mean over its two runs "
        "(first and last). The CPU columns are the user + system time of the serving process (otpd, or the "
        "reference) and of Redis (`INFO cpu`), from the start of the scenario until its events were "
        "delivered, per request answered; in brackets, as a multiple of the pool reference's. Store round "
        "trips are otpd's own count of its calls to Redis for requests (`otpd_store_calls_total`, "
        "`caller=\"requests\"` where otpd labels it, so the event worker's calls are not among them) over the "
        "requests wrk completed. Redis commands are `INFO commandstats` deltas over the same span, divided "
        "the same way: Redis counts the commands a script runs as well as the EVALSHA that ran it, and the "
        "event worker's (XREADGROUP, the settle script, ...), so these are not round trips. While one "
        "otpd is measured the other is paused (SIGSTOP), and both are while a reference is, so an idle "
        "event worker's polling stays out of the figures."
    )
    unlabelled = facts.get("store_calls_labelled") == "0"
    if unlabelled and events_on:
        out.append("")
        out.append(
            "**This otpd does not label its store calls by caller**, so the round trips above include its "
            "event worker's calls (reading, settling and promoting deliveries), not only the requests'."
        )
    if events_on:
        lines = []
        for instance in INSTANCES:
            for kind in KINDS:
                r = runs.get(f"{kind}_{instance}")
                if r:
                    lines.append(
                        f"{KIND_SHORT[kind]} {INSTANCE_NAMES[instance]}: {r.delivered:.2f} per request, "
                        f"drained {r.drain_s:.1f} s after"
                    )
        out.append("")
        out.append(
            "Events delivered to the endpoint, and how long the outbox took to empty after the scenario "
            "(that time's CPU is in the columns above): " + "; ".join(lines) + "."
        )

    # --- What an event costs ---
    event_costs = {}
    for label, with_events, without in (
        ("full load", "send_defaults", "send_quiet"),
        ("1 % of full load", "send_paced_defaults", "send_paced_quiet"),
    ):
        d, q = runs.get(with_events), runs.get(without)
        if d and q and d.delivered:
            event_costs[label] = (d, q, (d.cpu_ns_us - q.cpu_ns_us) / d.delivered)
    if event_costs:
        out.append("")
        out.append("### What an event costs")
        out.append("")
        out.append(
            "| sends at the defaults | req/s with an endpoint / without | otpd CPU µs per send, with / without "
            "| events per send | **otpd CPU µs per event** | Redis CPU µs per send, with / without "
            "| store calls per send with events (every caller) |"
        )
        out.append("|---|---|---|---:|---:|---|---:|")
        for label, (d, q, cost) in event_costs.items():
            out.append(
                f"| {label} | {d.rps:,.0f} / {q.rps:,.0f} | {d.cpu_ns_us:.0f} / {q.cpu_ns_us:.0f} "
                f"| {d.delivered:.2f} | **{cost:.1f}** | {fmt_us(d.redis_us)} / {fmt_us(q.redis_us)} "
                f"| {d.all_trips:.2f} |"
            )
        out.append("")
        out.append(
            "Each row is the same sends to two instances at the defaults, one with the bench's event endpoint "
            "(the reference answering `POST /hook` with 204) and one without any: the cost of an event is the "
            "difference in otpd's CPU per send, over the scenario and the outbox's drain after it, divided by "
            "the events a send made. CPU here is the sum of otpd's threads' run time (`schedstat`, ns). At 1 % "
            f"of load (one connection, paced at {facts.get('paced_rate', '?')} req/s) the outbox holds one "
            "send's events at a time, so nothing is batched. The store calls are every caller's "
            "(`otpd_store_calls_total`): the request's own and the event worker's reads and settlements."
        )

    # --- The ceiling the rest of the machine sets ---
    cpus = num(facts, "nproc", float("nan"))
    ceilings = {}
    rest_rows = []
    for instance in INSTANCES:
        for kind in KINDS:
            r = runs.get(f"{kind}_{instance}")
            if not r:
                continue
            hook = r.hook_us if events_on else 0.0
            # wrk spends more a request the fewer it makes (fewer requests
            # per wake-up); were otpd free it would make more, so it is
            # counted at the pool reference's cost when that is lower.
            wrk = min(r.wrk_us, pool["wrk_us"]) if pool and not math.isnan(pool["wrk_us"]) else r.wrk_us
            top = ceiling(cpus, wrk, hook, r.redis_us)
            ceilings[r.name] = top
            rest_rows.append(
                f"| {KIND_SHORT[kind]}, {INSTANCE_NAMES[instance]} | {fmt_us(r.wrk_us)} | "
                + (f"{fmt_us(hook)} | " if events_on else "")
                + f"{fmt_us(r.redis_us)} | {fmt_us(r.cpu_us)} | {'n/a' if math.isnan(top) else f'{top:,.0f}'} | "
                f"{fmt_ratio(ratio(top, pool['rps']) if pool else float('nan'))} |"
            )
    if any(not math.isnan(top) for top in ceilings.values()):
        out.append("")
        out.append("### What the rest of the machine spends, and the ceiling it sets")
        out.append("")
        out.append(
            "| scenario | wrk CPU µs/req | "
            + ("event endpoint CPU µs/req | " if events_on else "")
            + "Redis CPU µs/req | otpd CPU µs/req | req/s were otpd to take no CPU | that ÷ the pool reference's req/s |"
        )
        out.append("|---|---:|" + ("---:|" if events_on else "") + "---:|---:|---:|---:|")
        out.extend(rest_rows)
        if pool:
            own = ceiling(cpus, pool["wrk_us"], pool["cpu_us"], pool["redis_us"])
            out.append("")
            out.append(
                f"Every scenario's work that isn't otpd's, {int(cpus)} CPUs busy all the time: wrk's (load "
                "generation; counted at the pool reference's cost where that is lower, since wrk spends less a "
                "request the faster it goes)"
                + (", the event endpoint's (the reference answering `POST /hook`, on the same CPUs)" if events_on else "")
                + " and Redis's, each per request from the start of the scenario until its events were "
                "delivered. The req/s that allows is what this machine could serve were otpd's own work free: "
                "an estimate, not a proof (Redis and the endpoint, too, spend a little less a request the "
                "faster they go), and a generous one, since no CPU is ever idle in it: the pool reference "
                f"({fmt_us(pool['wrk_us'])} µs of wrk, {fmt_us(pool['cpu_us'])} of its own and "
                f"{fmt_us(pool['redis_us'])} of Redis a request) would reach {own:,.0f} req/s "
                f"by the same sum, and served {pool['rps']:,.0f} ({fmt_ratio(ratio(pool['rps'], own))} of it). "
                f"Where the last column is well under {RPS_FLOOR}, the target of {RPS_FLOOR} of the pool "
                "reference's req/s is out of reach on this machine whatever otpd does."
            )

    # --- Commands ---
    out.append("")
    out.append("### Redis commands per request, by command")
    out.append("")
    out.append("| scenario | commands |")
    out.append("|---|---|")
    for name in ["ref_pool_first", "ref_mux_first"]:
        r = runs.get(name)
        if r and r.cmds:
            out.append(f"| {name.replace('_first', '').replace('_', ' ')} | {r.cmds['detail']} |")
    for instance in INSTANCES:
        for kind in KINDS:
            r = runs.get(f"{kind}_{instance}")
            if r and r.cmds:
                out.append(f"| {KIND_SHORT[kind]}, {INSTANCE_NAMES[instance]} | {r.cmds['detail']} |")

    # --- Memory ---
    checks = []
    out.append("")
    out.append("## Redis memory per pending code")
    out.append("")
    codes = int(num(facts, "memory_codes"))
    per_code = steady = float("nan")
    if codes:
        grown = int(num(facts, "memory_bytes"))
        used = int(num(facts, "memory_used_bytes"))
        per_code = grown / codes
        out.append(
            f"{codes:,} sends at the defaults, each from a client of its own, on a Redis holding nothing else of "
            f"the run's yet. Once the outbox had drained ({facts.get('memory_drain_s', '?')} s after the last "
            f"send), Redis's memory for data had grown by {grown:,} bytes: **{per_code:,.0f} bytes per pending "
            "code**"
            + (" on the masters (each replica holds as much again)" if cluster else "")
            + ", everything a send leaves behind included: the code, the phone's and the client's counters, "
            "the keyspace's entries, and what the outbox keeps. That is the growth of `used_memory` less the replication "
            "buffers' and the clients' buffers (`mem_replication_backlog`, `mem_clients_slaves`, "
            "`mem_clients_normal`), which move on their own; `used_memory` itself grew by "
            f"{used:,} bytes ({used / codes:,.0f} per code). By kind of key (the hash tag's contents left out), "
            "with `MEMORY USAGE` of up to 50 of each:"
        )
        out.append("")
        out.append("| key | what | keys | per code | bytes each (MEMORY USAGE) | bytes per code | lives (s) |")
        out.append("|---|---|---:|---:|---:|---:|---:|")
        # (name, keys, MEMORY USAGE each, life ms or -1), most keys first.
        rows = sorted(
            (
                (
                    kind.get("kind", "").replace("{}", "{…}"),
                    int(kind.get("keys", 0)),
                    float(kind.get("mean_bytes", 0)),
                    int(kind.get("life_ms", -1)),
                )
                for kind in kinds
            ),
            key=lambda row: -row[1],
        )
        total = 0.0
        for name, keys, each, life in rows:
            total += keys * each / codes
            out.append(
                f"| `<prefix>{name}` | {KEY_KINDS.get(name, '')} | {keys:,} | {keys / codes:.3f} | {each:,.0f} | "
                f"{keys * each / codes:,.0f} | {f'{life / 1000:,.0f}' if life > 0 else 'no expiry'} |"
            )
        out.append(f"| all | | | | | {total:,.0f} | |")
        out.append("")
        out.append(
            "`used_memory` counts more than the keys' `MEMORY USAGE`: the keyspace's and the expiry table's "
            "entries, and the tables' growth (they double as they fill, so a run that crosses a doubling "
            "shows more per code than one that doesn't)."
        )
        # Keys that outlive their code are still there while later codes
        # are pending: at a steady rate of sends Redis holds each kind for
        # its life, not the code's.
        all_keys = sum(keys for _, keys, _, _ in rows)
        overhead = (grown - total * codes) / all_keys if all_keys else 0.0
        steady = 0.0
        for _, keys, each, life in rows:
            share = max(life / 1000 / CODE_LIFE_S, 1.0) if life > 0 else 1.0
            steady += keys * (each + overhead) / codes * share
        out.append("")
        out.append(
            f"**At a steady rate of sends** the keys that outlive their code are still held while later codes "
            f"are pending: each kind for its life (the longest `PTTL` sampled, a few seconds short of it) over "
            f"the code's {CODE_LIFE_S} s, the rest of `used_memory`'s growth ({overhead:,.0f} bytes a key) shared "
            f"out by key. That is **{steady:,.0f} bytes per pending code** when no code is used (a code verified "
            "or cancelled leaves only its phone's tally, which `docs/performance.md` measures), or "
            f"{steady * CODE_LIFE_S / 1e6:,.2f} MB of Redis for each send a second."
        )
    else:
        out.append("Not measured (`MEMORY_CODES=0`).")
    checks.append(
        (
            f"Redis memory per pending code <= {MEMORY_CEILING} B",
            f"{per_code:,.0f} B" if codes else "not measured",
            (per_code <= MEMORY_CEILING) if codes else None,
        )
    )
    checks.append(
        (
            f"Redis memory per pending code at a steady rate of sends, no code used <= {MEMORY_CEILING} B",
            f"{steady:,.0f} B" if codes else "not measured",
            (steady <= MEMORY_CEILING) if codes else None,
        )
    )

    out.append("")
    out.append("## otpd's memory")
    out.append("")
    for instance in INSTANCES:
        hwm = num(facts, f"vmhwm_kb_{instance}") / 1024
        served = int(num(facts, f"otpd_requests_{instance}"))
        after = [
            f"{KIND_SHORT[kind]} {num(runs[f'{kind}_{instance}'].raw, 'rss_kb') / 1024:.1f}"
            for kind in KINDS
            if f"{kind}_{instance}" in runs
        ]
        out.append(
            f"- {INSTANCE_NAMES[instance]}: peak RSS (VmHWM) {hwm:.1f} MB, RSS at the end "
            f"{num(facts, f'vmrss_kb_{instance}') / 1024:.1f} MB, after {served:,} requests; RSS after each "
            f"scenario (MB): {', '.join(after) or 'n/a'}"
        )
        if hwm:
            enough = served >= RSS_AFTER_REQUESTS
            checks.append(
                (
                    f"{INSTANCE_NAMES[instance]}: peak RSS < {RSS_CEILING_MB} MB after {RSS_AFTER_REQUESTS:,} requests",
                    f"{hwm:.1f} MB after {served:,} requests"
                    + ("" if enough else " (fewer requests than the target asks for)"),
                    (hwm < RSS_CEILING_MB) if enough else (False if hwm >= RSS_CEILING_MB else None),
                )
            )
    if soak:
        out.append("")
        out.append(
            f"Soak: sends at the defaults for {facts.get('soak_seconds')} s, fresh phones and clients, "
            "RSS sampled every 10 s:"
        )
        out.append("")
        out.append("| t (s) | RSS (MB) | requests the defaults instance has served so far |")
        out.append("|---:|---:|---:|")
        for s in soak:
            out.append(f"| {s.get('t')} | {int(s.get('rss_kb', 0)) / 1024:.1f} | {int(s.get('requests', 0)):,} |")
        soak_run = next((r for r in raws if r.get("phase") == "soak"), None)
        if soak_run:
            out.append("")
            out.append(
                f"Soak throughput {num(soak_run, 'rps'):,.0f} req/s, p50 {num(soak_run, 'p50_ms'):.2f} ms, "
                f"p99 {num(soak_run, 'p99_ms'):.2f} ms; responses {status_mix(soak_run)}."
            )
        rss = [int(s.get("rss_kb", 0)) / 1024 for s in soak]
        # Flat: after the first minute (allocator warm-up), RSS moves by less
        # than 10 % of where it stood then.
        settled = [r for s, r in zip(soak, rss) if int(s.get("t", 0)) >= 60]
        since = "after the first minute" if settled else "over the whole soak"
        settled = settled or rss
        drift = (max(settled) - min(settled)) / min(settled) if min(settled) else float("inf")
        long_enough = int(num(facts, "soak_seconds")) >= SOAK_SECONDS
        checks.append(
            (
                "RSS flat over a 5-minute soak at the defaults",
                f"{min(rss):.1f} to {max(rss):.1f} MB over {facts.get('soak_seconds')} s; {drift:.1%} drift {since}"
                + ("" if long_enough else " (soak shorter than 5 minutes)"),
                (drift < 0.10) if long_enough else (False if drift >= 0.10 else None),
            )
        )
    else:
        checks.append(("RSS flat over a 5-minute soak at the defaults", "not run (set SOAK=300)", None))

    # --- Targets ---
    target_rows = []
    for kind in KINDS:
        d, o = runs.get(f"{kind}_defaults"), runs.get(f"{kind}_off")
        if not d:
            continue
        short = KIND_SHORT[kind]
        if o:
            x = ratio(d.rps, o.rps)
            target_rows.append(
                (
                    f"{short} at the defaults: req/s >= {VS_OFF_FLOOR} x limits off",
                    f"{fmt_ratio(x)} ({d.rps:,.0f} vs {o.rps:,.0f})",
                    x >= VS_OFF_FLOOR,
                )
            )
        if pool:
            x = ratio(d.rps, pool["rps"])
            top = ratio(ceilings.get(d.name, float("nan")), pool["rps"])
            target_rows.append(
                (
                    f"{short} at the defaults: req/s >= {RPS_FLOOR} x the pool reference's",
                    f"{fmt_ratio(x)} ({d.rps:,.0f} vs {pool['rps']:,.0f})"
                    + ("" if math.isnan(top) else f"; {fmt_ratio(top)} were otpd to take no CPU"),
                    x >= RPS_FLOOR,
                )
            )
            x = ratio(d.p99, pool["p99"])
            target_rows.append(
                (
                    f"{short} at the defaults: p99 <= {P99_CEILING} x the pool reference's",
                    f"{fmt_ratio(x)} ({d.p99:.2f} ms vs {pool['p99']:.2f} ms)",
                    x <= P99_CEILING,
                )
            )
    for instance in INSTANCES:
        for kind in KINDS:
            r = runs.get(f"{kind}_{instance}")
            if not r:
                continue
            most = TRIPS[kind]
            what = "one store round trip" if most == 1 else f"at most {most} store round trips"
            ok = None if cluster else (
                abs(r.trips - most) <= ROUND_TRIP_TOLERANCE if most == 1 else r.trips <= most + ROUND_TRIP_TOLERANCE
            )
            note = ""
            if cluster:
                note = " (on a cluster: reported, not a target)"
            elif unlabelled and events_on:
                note = " (the event worker's calls included: this otpd doesn't label them)"
            target_rows.append(
                (
                    f"{KIND_SHORT[kind]} {INSTANCE_NAMES[instance]}: {what} per request (single Redis)",
                    f"{r.trips:.2f}{note}",
                    ok,
                )
            )
    if events_on:
        dropped = [r for r in runs.values() if int(num(r.raw, "events_dropped"))]
        target_rows.append(
            (
                "no event dropped (the outbox held every delivery the scenario made)",
                "none dropped"
                if not dropped
                else "; ".join(f"{r.name}: {int(num(r.raw, 'events_dropped')):,}" for r in dropped)
                + " (a scenario whose events are dropped does less work than one whose events are all delivered)",
                not dropped,
            )
        )
    for label, (_, _, cost) in event_costs.items():
        most = EVENT_CEILING_US if label == "full load" else EVENT_CEILING_US * EVENT_PACED_FACTOR
        target_rows.append((f"an event at {label}: otpd CPU <= {most} µs", f"{cost:.1f} µs", cost <= most))
    bad = [r for r in runs.values() if r.unexpected]
    target_rows.append(
        (
            "every answer the scenario's status (202, 200, 422), no code used past its share",
            "yes" if not bad else "no: " + "; ".join(f"{r.name} {status_mix(r.raw)}" for r in bad),
            not bad,
        )
    )

    out.append("")
    out.append("## Targets")
    out.append("")
    out.append("| target | measured | |")
    out.append("|---|---|---|")
    for what, measured, ok in target_rows + checks:
        out.append(f"| {what} | {measured} | {yes_no(ok)} |")

    if warnings:
        out.append("")
        out.append("## Warnings in this run")
        out.append("")
        for w in warnings:
            out.append(f"- {w}")
    out.append("")
    return "\n".join(out), runs, refs


def svg_chart(runs, refs, title, footer):
    """Two panels, req/s and p99: for each of otpd's scenarios a bar at the
    defaults and one with limits off, then the two references; dashed lines
    at the targets (80 % of the pool reference's req/s, 1.25x its p99)."""
    width, height = 960, 440
    panel_w, top, bottom = 420, 84, 340
    colors = {"defaults": "#3b6ea5", "off": "#9cbbe0", "pool": "#7f7f7f", "mux": "#4d4d4d"}
    groups = []
    for kind in KINDS:
        bars = [(i, runs.get(f"{kind}_{i}")) for i in INSTANCES]
        bars = [(i, r) for i, r in bars if r]
        if bars:
            groups.append((KIND_SHORT[kind], [(i, r.rps, r.p99) for i, r in bars]))
    ref_bars = [(k, v["rps"], v["p99"]) for k, v in refs.items() if v]
    if ref_bars:
        groups.append(("references", ref_bars))
    pool = refs.get("pool")

    def panel(x0, index, label, fmt, line_value, line_label):
        values = [b[index] for _, bars in groups for b in bars]
        peak = max(values + [line_value if not math.isnan(line_value) else 0] + [0]) or 1
        scale = (bottom - top) / (peak * 1.15)
        gap = panel_w / max(len(groups), 1)
        parts = [
            f'<text x="{x0 + panel_w / 2}" y="{top - 22}" text-anchor="middle" font-size="15" '
            f'font-weight="bold">{escape(label)}</text>',
            f'<line x1="{x0}" y1="{bottom}" x2="{x0 + panel_w}" y2="{bottom}" stroke="#333"/>',
        ]
        for g, (name, bars) in enumerate(groups):
            bar_w = gap * 0.8 / max(len(bars), 1)
            gx = x0 + g * gap + gap * 0.1
            for b, bar in enumerate(bars):
                key, v = bar[0], bar[index]
                x = gx + b * bar_w
                h = v * scale
                parts.append(
                    f'<rect x="{x:.1f}" y="{bottom - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                    f'fill="{colors[key]}"><title>{escape(name)}, {escape(key)}: {fmt(v)}</title></rect>'
                )
                parts.append(
                    f'<text x="{x + (bar_w - 2) / 2:.1f}" y="{bottom - h - 5:.1f}" text-anchor="middle" '
                    f'font-size="10">{fmt(v)}</text>'
                )
            parts.append(
                f'<text x="{gx + gap * 0.4:.1f}" y="{bottom + 18}" text-anchor="middle" '
                f'font-size="12">{escape(name)}</text>'
            )
        if not math.isnan(line_value):
            y = bottom - line_value * scale
            parts.append(
                f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + panel_w}" y2="{y:.1f}" stroke="#c0392b" '
                f'stroke-dasharray="6,4"/>'
            )
            # The line's meaning goes under the panel title, where no bar can hide it.
            parts.append(
                f'<text x="{x0 + panel_w / 2}" y="{top - 6}" text-anchor="middle" font-size="11" '
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
        40, 1, "requests per second (higher is better)", lambda v: f"{v:,.0f}",
        pool["rps"] * RPS_FLOOR if pool else float("nan"), f"target: {RPS_FLOOR:.0%} of the pool reference",
    )
    body += panel(
        500, 2, "p99 latency, ms (lower is better)", lambda v: f"{v:.2f}",
        pool["p99"] * P99_CEILING if pool else float("nan"), f"target: {P99_CEILING}x the pool reference",
    )
    legend = [
        ("defaults", "otpd at the defaults"),
        ("off", "otpd, limits off"),
        ("pool", "reference: bb8 pool"),
        ("mux", "reference: multiplexed connection"),
    ]
    x = 120
    for key, label in legend:
        body.append(f'<rect x="{x}" y="{height - 62}" width="12" height="12" fill="{colors[key]}"/>')
        body.append(f'<text x="{x + 17}" y="{height - 52}" font-size="12">{escape(label)}</text>')
        x += 40 + 7 * len(label)
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

    markdown, runs, refs = build(args.work)
    facts, _, _, _ = read_facts(args.work)
    with open(args.markdown, "w") as f:
        f.write(markdown)
    where = "on a 3+3 Redis Cluster" if facts.get("cluster") == "1" else "on one Redis"
    title = (
        f"otpd at the defaults and with limits off, vs one SETEX, {where}, "
        f"{facts.get('date', '')}, DURATION={facts.get('duration', '?')} s"
    )
    with open(args.svg, "w") as f:
        footer = (
            f"wrk, {facts.get('threads', '?')} threads, {facts.get('connections', '?')} connections, "
            f"{facts.get('nproc', '?')} CPUs shared by all; references: the mean of their first and last runs"
        )
        f.write(svg_chart(runs, refs, title, footer))
    sys.stdout.write(markdown)


if __name__ == "__main__":
    main()
