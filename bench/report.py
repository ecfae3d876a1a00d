"""docs/benchmarks.md and docs/benchmarks.png from bench/run.py's results."""

from __future__ import annotations

import datetime
from pathlib import Path

NOTES = Path(__file__).resolve().parent / "notes.md"


def _seed_floor(seed: dict) -> list[str]:
    """The paragraph on what seed-demo's load takes with nothing to check (bench/seed_floor.py)."""
    floor = seed.get("floor")
    if not floor:
        return []
    schema, bare = floor["schema"], floor["bare"]
    return [
        "",
        f"The floor (`bench/seed_floor.py`): seed-demo's own code, in process, loading into tables with its"
        f" columns and no constraint, trigger or index, against the same into the schema, alternating:"
        f" **{bare['median']:,.0f} payouts/s** bare against {schema['median']:,.0f} into the schema"
        f" (bare {', '.join(f'{r:,.0f}' for r in bare['rates'])};"
        f" schema {', '.join(f'{r:,.0f}' for r in schema['rates'])}).",
    ]


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


# What an app scenario is measured against, by the other scenario's key.
SIDE_BY_SIDE = {
    "reference_409": "against the hand-written reference",
    "reference_events": "against the hand-written reference",
    "reference_list_first": "against the hand-written reference",
    "create_201_no_event": "against the same without the creation event",
}


def _side_by_side(by_key: dict, key: str, label: str) -> list[tuple[str, str, str]]:
    """The target row of a scenario measured side by side with another, if it ran."""
    versus = by_key.get(key, {}).get("versus")
    if not versus or versus.get("target") is None:
        return []
    return [(f"{label}: req/s >= {versus['target']:g} x the other's, side by side", f"{versus['ratio']:.3f}",
             _verdict(versus["ratio"] >= versus["target"]))]


def _against(by_key: dict, key: str, other: str, target: float, label: str) -> list[tuple[str, str, str]]:
    """A scenario against another measured in the same rounds, each as a ratio
    to its own ceiling runs: the median over rounds of the two ratios' ratio."""
    if key not in by_key or other not in by_key:
        return []
    import statistics

    ratio = statistics.median(a / b for a, b in zip(by_key[key]["ratios"], by_key[other]["ratios"]))
    return [(f"{label}: req/s >= {target:g} x its", f"{ratio:.2f}", _verdict(ratio >= target))]


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, figure, met/missed) for every target of issue 17."""
    load = results["load"]
    rows = []
    by_key = {row["key"]: row for row in load["scenarios"]}
    rows.extend(_against(by_key, "failed_200", "reference_normal_200", 1.0,
                         "200 path against the reference endpoint that does not sync (`NORMAL`)"))
    rows.extend(_against(by_key, "failed_200", "reference_durable_200", 1.2,
                         "200 path against the durable reference endpoint (`FULL`)"))
    for row in load["scenarios"]:
        label = SIDE_BY_SIDE.get(row.get("versus", {}).get("key"))
        if label and row.get("versus", {}).get("key") != "create_201_no_event":
            rows.extend(_side_by_side(by_key, row["key"], f"{row['label']}, {label}"))
    if "failed_200" in by_key:
        write = by_key["failed_200"]
        rows.append(("200 path: p99 <= 2 x ceiling p99", f"{write['p99_ratio']:.1f}",
                     _verdict(write["p99_ratio"] <= 2.0)))
    rows.extend(_side_by_side(by_key, "pg_failed_200", "PostgreSQL 200 path, against the raw loop"))
    rows.extend(_side_by_side(by_key, "failed_200_webhook", "what a feature costs: 200 path, one webhook endpoint"))
    rows.extend(_side_by_side(by_key, "failed_409_named", "what a feature costs: 409 path, a named token"))
    rows.extend(_side_by_side(by_key, "create_201", "what a feature costs: create path, the creation event"))
    return rows


def earlier_targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, figure, met/missed) for the first release's targets (issue 5),
    still measured: ratios to the ceiling, and the in-process, seed and memory figures."""
    load = results["load"]
    rows = []
    by_key = {row["key"]: row for row in load["scenarios"]}
    if "failed_200" in by_key:
        write = by_key["failed_200"]
        rows.append(("200 path: req/s >= 0.58 x ceiling", f"{write['ratio']:.2f}", _verdict(write["ratio"] >= 0.58)))
    if "failed_409" in by_key:
        conflict = by_key["failed_409"]
        rows.append(("409 path: req/s >= 0.85 x ceiling", f"{conflict['ratio']:.2f}",
                     _verdict(conflict["ratio"] >= 0.85)))
    for row in load["scenarios"]:
        if row["key"].startswith("list_first_"):
            rows.append(
                (
                    f"{row['label']}: req/s >= 0.6 x ceiling",
                    f"{row['ratio']:.2f}",
                    _verdict(row["ratio"] >= 0.6),
                )
            )
    deep = load.get("deep_vs_first")
    if deep:
        rows.append(
            (
                (
                    f"deep page at {results['sizes']['large_label']} costs <= 1.2 x first page at "
                    f"{results['sizes']['small_label']} (1 / req/s)"
                ),
                f"{deep['cost_ratio']:.2f}",
                _verdict(deep["cost_ratio"] <= 1.2),
            )
        )
    for item in results.get("inprocess", []):
        if item["target"]:
            rows.append(
                (
                    f"in process, {item['label']}: <= {item['target']:g} x raw SQLite",
                    f"{item['ratio']:.2f}",
                    _verdict(item["ratio"] <= item["target"]),
                )
            )
    seed = results.get("seed")
    if seed:
        rows.append(
            ("seed-demo: >= 50,000 payouts/s", f"{seed['median']:,.0f}", _verdict(seed["median"] >= 50_000))
        )
    rss = results.get("rss")
    if rss:
        rows.append(
            (
                (
                    f"worker RSS after {rss['points'][-1]['requests']:,} requests <= 1.10 x after "
                    f"{rss['points'][0]['requests']:,}"
                ),
                f"{rss['growth']:.3f}",
                _verdict(rss["growth"] <= 1.10),
            )
        )
    return rows


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = results["load"]["scenarios"]
    labels = [row["label"] for row in rows][::-1]
    ratios = [row["ratio"] for row in rows][::-1]
    p99 = [row["p99_ratio"] for row in rows][::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.55 * len(rows) + 1.6), sharey=True)
    ys = range(len(rows))
    # The reference endpoint's rows (bench/reference.py) are for scale, in grey.
    reference = [row["key"].startswith(("reference_", "pg_reference_")) for row in rows][::-1]
    left.barh(ys, ratios, color=["#a8a8a8" if r else "#4c72b0" for r in reference])
    for y, row in zip(ys, rows[::-1]):
        if row["target"]:
            left.plot([row["target"]] * 2, [y - 0.4, y + 0.4], color="#c44e52", lw=2)
        left.text(row["ratio"] + 0.01, y, f"{row['ratio']:.2f}", va="center", fontsize=8)
    left.axvline(1.0, color="grey", lw=0.8, ls="--")
    left.set_xlim(0, max(1.1, max(ratios) + 0.15))
    left.set_yticks(list(ys), labels)
    left.set_xlabel("throughput / ceiling's (higher is better; red: target)")
    right.barh(ys, p99, color=["#c8c8c8" if r else "#dd8452" for r in reference])
    for y, row in zip(ys, rows[::-1]):
        if row["p99_target"]:
            right.plot([row["p99_target"]] * 2, [y - 0.4, y + 0.4], color="#c44e52", lw=2)
        right.text(row["p99_ratio"] * 1.05, y, f"{row['p99_ratio']:.1f}", va="center", fontsize=8)
    right.set_xscale("log")
    right.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    right.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.axvline(1.0, color="grey", lw=0.8, ls="--")
    right.set_xlim(0.5, max(p99) * 2.5)
    right.set_xlabel("p99 latency / ceiling's (log; lower is better)")
    ceiling = results["load"]["ceiling"]
    fig.suptitle(
        f"triport_payouts vs a bare WSGI ceiling ({ceiling['rps']:,.0f} req/s, p99 "
        f"{ceiling['p99_ms']:.1f} ms), medians of {results['load']['rounds']} rounds",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict, out: Path, quick: bool = False) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    chart(results, png)
    m, a, load = results["machine"], results["args"], results["load"]
    ceiling = load["ceiling"]
    lines = [
        "# Benchmarks",
        "",
        (
            f"Generated by `{'bench/run.py --quick' if quick else 'make bench'}` (`bench/run.py`) on "
            f"{datetime.date.today().isoformat()}, in {results['elapsed_s'] / 60:.1f} minutes."
            " The figures are"
            " rewritten by each full run; the notes at the end come from `bench/notes.md`."
        ),
        "",
        (
            'Every load figure is a ratio to the **ceiling**: a bare WSGI callable answering `{"ok": true}`'
            " with the same headers (`bench/ceiling.py`), served by the same gunicorn settings"
            f" (`triport_payouts.gunicorn_conf`, {a['workers']} sync workers) and measured in the same round."
            f" Each ratio is taken within a round, then the median of {load['rounds']} rounds is reported."
        ),
        "",
        "## Targets (issue 17: speed, measured fairly)",
        "",
        "Each against what it is compared with in the same run: the 200 path against the hand-written"
        " reference endpoints (the ratio of their ratios to the ceiling, median over rounds); the read"
        " paths against their hand-written references, PostgreSQL's 200 path against the raw psycopg loop,"
        " and each feature against the same path without it, side by side (see below).",
        "",
        "| target | figure | |",
        "| --- | ---: | --- |",
        *(f"| {t} | {f} | {v} |" for t, f, v in targets(results)),
        "",
        "The first release's targets (issue 5), still measured:",
        "",
        "| target | figure | |",
        "| --- | ---: | --- |",
        *(f"| {t} | {f} | {v} |" for t, f, v in earlier_targets(results)),
        "",
        "## Load: every route against the ceiling",
        "",
        f"wrk, {a['connections']} connections, {a['threads']} threads, {a['duration']:g} s per run,"
        f" {load['rounds']} rounds. A round runs the ceiling, a scenario, the ceiling, the next scenario,"
        " ..., the ceiling: each scenario's ratios are to the mean of the two ceiling runs around it."
        " req/s, p50 and p99 (wrk's latency percentiles) are medians over rounds; the ratios are"
        " medians of the per-round ratios. Load average at the start of each round: "
        + ", ".join(" ".join(avg) for avg in load["loadavg_rounds"])
        + " (this machine is shared with other work: the per-round ratios show the noise).",
        "",
        "The two reference rows (grey in the chart) are not the app: they are the same writes by a bare"
        " endpoint written by hand (`bench/reference.py`: the status read, then the compare-and-set and"
        " the event in one `BEGIN IMMEDIATE`, writers queued on the app's lock file, nothing else), once"
        " with every `COMMIT` synced (`synchronous=FULL`: an answered write survives a power cut, as the"
        " app's do) and once with the common WAL setting that may lose the last answered writes in a"
        " power cut (`NORMAL`). They show what such a write costs on this machine with and without that"
        " promise, without the app's own work.",
        "",
        "The other reference rows are the read paths written by hand (`bench/reference_reads.py`): the 409"
        " refusal, a payout's events and the list's first page, each one function doing the app's checks in"
        " the app's order and answering the same status, headers and bytes (checked on the measured request"
        " before the rounds), each measured side by side with the app's route. The create path is measured"
        " side by side with a bench-only build of the app that writes no creation event"
        " (`bench/variants.py`); after each create run the payouts created, the 201s counted and the"
        " creation events written are checked against each other.",
        "",
        *postgres_paragraph(results),
        "| scenario | req/s | / ceiling | p50 ms | p99 ms | p99 / ceiling's | target | per-round ratios |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        (
            f"| ceiling: bare WSGI | {ceiling['rps']:,.0f} | 1 | {ceiling['p50_ms']:.2f}"
            f" | {ceiling['p99_ms']:.2f}"
            " | 1 | | |"
        ),
    ]
    for row in load["scenarios"]:
        target = []
        if row["target"]:
            target.append(f">= {row['target']:g} ({'met' if row['ratio'] >= row['target'] else 'missed'})")
        versus = row.get("versus") or {}
        if versus.get("target"):
            target.append(f">= {versus['target']:g} x {versus['key']}, side by side"
                          f" ({'met' if versus['ratio'] >= versus['target'] else 'missed'}: {versus['ratio']:.3f})")
        if row["p99_target"]:
            target.append(
                f"p99 <= {row['p99_target']:g}x "
                f"({'met' if row['p99_ratio'] <= row['p99_target'] else 'missed'})"
            )
        lines.append(
            f"| {row['label']} | {row['rps']:,.0f} | {row['ratio']:.2f} | {row['p50_ms']:.2f}"
            f" | {row['p99_ms']:.2f} | {row['p99_ratio']:.1f} | {'; '.join(target)}"
            f" | {', '.join(f'{r:.2f}' for r in row['ratios'])} |"
        )
    deep = load["deep_vs_first"]
    lines += [
        *side_by_side(load["scenarios"]),
        "",
        (
            f"Deep page against first page: a page {results['deep_rows']:,} rows down the"
            f" {results['sizes']['large_label']} list costs {deep['cost_ratio']:.2f} times the first page"
            f" of the {results['sizes']['small_label']} list (inverse throughput; p50 ratio"
            f" {deep['p50_ratio']:.2f})."
        ),
        "",
        f"![throughput and p99 against the ceiling]({png.name})",
        "",
        "## In process: the app against its SQLite statements",
        "",
        (
            "One WSGI call with a prebuilt environ (no HTTP) against the raw statements that call runs, in a"
            " plain loop on a persistent connection with the app's guarantees the plain way (WAL, foreign"
            " keys, and `synchronous=FULL`: SQLite syncs each `COMMIT` itself, where the app syncs the log"
            " after releasing its lock), on the same database; the two loops alternate (reads by blocks, writes call by"
            " call, as a write's time is mostly a varying fsync), and each figure is the median over blocks"
            " (for writes, of each block's median call: the two loops share one log, and its few long"
            " checkpoints fall on whichever connection crosses the threshold; the ratio of the means is"
            " given below the table)."
            " The 200 path's raw loop is the status read, `BEGIN IMMEDIATE`, the compare-and-set `UPDATE`,"
            " the event `INSERT` and `COMMIT`; the 409 path's is the one status `SELECT`; a list page's is"
            " its one `SELECT ... LIMIT 51`; the user view's is the balance rows and the 21 newest payouts."
        ),
        "",
        "| route | app us/call | raw SQLite us | ratio | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for item in results["inprocess"]:
        if item.get("against"):
            continue  # not against SQLite: below the table
        raw = f"{item['raw_us']:.1f}" if item["raw_us"] else "-"
        ratio = f"{item['ratio']:.2f}" if item["ratio"] else "-"
        target = ""
        if item["target"]:
            target = f"<= {item['target']:g} ({'met' if item['ratio'] <= item['target'] else 'missed'})"
        lines.append(f"| {item['label']} | {item['app_us']:.1f} | {raw} | {ratio} | {target} |")
    lines += [
        "",
        *(
            f"{item['label']}, ratio of the block means instead: {item['mean_ratio']:.2f}"
            f" (blocks: app {', '.join(f'{x:.0f}' for x in item['app_mean_us_blocks'])} us;"
            f" raw {', '.join(f'{x:.0f}' for x in item['raw_mean_us_blocks'])} us)."
            for item in results["inprocess"] if "mean_ratio" in item and not item.get("against")
        ),
        *(
            f"\n{item['label'].capitalize()}, against {item['against']} (the app on two copies of the"
            f" {results['sizes']['small_label']} database, one with an endpoint subscribed to every event type,"
            f" calls alternating one by one): **{item['ratio']:.3f}** times its per-call time, median over"
            f" blocks of each block's median call ({item['app_us']:.1f} us against {item['raw_us']:.1f} us;"
            f" ratio of the block means {item['mean_ratio']:.3f})."
            for item in results["inprocess"] if item.get("against")
        ),
    ]
    seed, rss = results["seed"], results["rss"]
    lines += [
        "",
        "## seed-demo",
        "",
        (
            f"`{seed['command']}` on a fresh database (after `init-db`), wall time of the command:"
            f" median **{seed['median']:,.0f} payouts/s** over {len(seed['rates'])} runs"
            f" ({', '.join(f'{r:,.0f}' for r in seed['rates'])}); target 50,000."
        ),
        *_seed_floor(seed),
        "",
        "## Worker memory",
        "",
        (
            "One gunicorn worker on the large database, every route in turn (list pages, user view, events,"
            " 409, 404, healthz, the OpenAPI document) plus a mark-failed on a fresh payout every ninth"
            " request; `VmRSS` of the worker from `/proc/PID/status`:"
        ),
        "",
        "| requests | VmRSS MiB |",
        "| ---: | ---: |",
        *(f"| {p['requests']:,} | {p['rss_kib'] / 1024:.1f} |" for p in rss["points"]),
        "",
        (
            f"Growth from the first point to the last: {rss['growth']:.3f} (target: at most 1.10). The wrk"
            " command of the last leg (`bench/wrk/mix.lua`, one thread, stops after `limit` answers):"
        ),
        "",
        "```sh",
        rss["command"] or "",
        "```",
        "",
        "## Machine",
        "",
        f"- {m['nproc']} CPUs: {m['cpu']}; {m['memory_gib']} GiB memory; Linux {m['kernel']}",
        f"- Python {m['python']}, SQLite {m['sqlite']}, gunicorn {m['gunicorn']}, {m['wrk']}",
        (
            f"- load average at start {' '.join(m['loadavg_start'])},"
            f" at end {' '.join(m.get('loadavg_end', []))}"
            " (wrk and gunicorn share the machine: the ratios, not the absolute figures, are the point)"
        ),
        f"- code: commit {m['commit']}"
        + (
            ", with uncommitted changes under triport_payouts/ (work in progress of others)"
            if m.get("app_changes")
            else ""
        ),
        "- time per phase: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in results["phases"].items()),
        "",
        "## Commands",
        "",
        "```sh",
        "sudo apt-get install wrk            # once (Debian's package)",
        "make bench                          # the full run, about 20 minutes: this page and its chart",
        ".venv/bin/python bench/run.py --quick   # a smoke run of about a minute (var/bench/quick/)",
        ".venv/bin/python bench/run.py --only failed_200,failed_409 --rounds 3"
        "   # some scenarios alone (var/bench/only/)",
        ".venv/bin/python bench/run.py --only failed_200,failed_200_webhook --rounds 12   # webhooks' cost alone",
        ".venv/bin/python bench/inprocess.py --profile failed   # cProfile of one route in process",
        ".venv/bin/python bench/run.py --only reference_409,failed_409,reference_events,events --rounds 4"
        "   # against the references",
        ".venv/bin/python bench/reference_inprocess.py [--profile conflict]   # the same in process",
        "```",
        "",
        (
            f"Databases: `init-db` then `seed-demo --payouts {results['sizes']['small']} --users"
            f" {results['sizes']['small'] // 100}` (fresh each run) and `seed-demo --payouts"
            f" {results['sizes']['large']} --users {results['sizes']['large'] // 100}`"
            " (kept in `var/bench/cache/` keyed by size and a hash of the schema and the seeding code,"
            " copied for each run). Every user has 100 payouts. The 200 path"
            f" takes fresh payouts from the {results['sizes']['large_label']} database, so it writes to a"
            " full-size table and indexes."
        ),
        "",
        (
            "gunicorn (the ceiling, the app on each database, and the reference endpoint), as run"
            " (stdout, the access log,"
            " to /dev/null):"
        ),
        "",
        "```sh",
        *(f"# {name}\n{command}" for name, command in results["commands"]["gunicorn"].items()),
        "```",
        "",
        (
            "wrk, one command per scenario as run (`bench/wrk/*.lua`; the scripts count every status,"
            " stop on their own clock, and print one JSON line that `bench/run.py` reads):"
        ),
        "",
        "```sh",
        *(f"# {name}\n{command}" for name, command in results["commands"]["wrk"].items()),
        "```",
        "",
        "## How the 200 path is checked",
        "",
        (
            "`bench/wrk/fresh_ids.lua` gives each wrk thread every n-th id of a list of untouched payouts,"
            " so no payout is asked twice. When the run's time is up a thread stops sending writes and sends"
            " only a `GET` on the POST route (405, no database work) until every write it sent is answered,"
            " so no write is cut off in flight. Then `bench/run.py` checks, after every run (warm-up"
            " included): the 200s wrk counted = the payouts that went to `failed` = the events written ="
            " the requests sent; every payout sent is `failed` and every one not sent still `requested`;"
            " with a webhook endpoint registered, one outbox row was written per event, and none without."
            " Any other status, a socket error or a difference fails the benchmark (exit status 1)."
        ),
        "",
    ]
    if NOTES.exists():
        lines += ["## Notes", "", NOTES.read_text().strip(), ""]
    out.write_text("\n".join(lines))


def postgres_paragraph(results: dict) -> list[str]:
    """What the PostgreSQL rows are (a results.json of an older run has none)."""
    info = results.get("postgres")
    if not info:
        return []
    if info.get("skipped"):
        return [f"PostgreSQL scenarios: skipped ({info['skipped']}).", ""]
    return [
        (
            f"The PostgreSQL rows run on the local server (PostgreSQL {info['server_version'].split()[0]},"
            f" `synchronous_commit={info['synchronous_commit']}`: an answered write is on its disk), on a copy"
            f" of a database seeded by `init-db` and `seed-demo --payouts {info['payouts']}"
            f" --users {info['users']}` (`bench/pg.py`). The app is served as on SQLite; the raw loop"
            " (`bench/reference_pg.py`, grey in the chart) is mark-failed written by hand: the token, the"
            " JSON body, the status read (the 409 path ends there), then the app's compare-and-set and event"
            " as the app sends them (one data-modifying statement, its own transaction), over one psycopg"
            " connection per worker. Two app hosts: a second"
            " gunicorn with the same workers on the same database, wrk split in two (half the connections"
            " each, at once; req/s summed, each percentile the worse of the two). The 200 paths are checked"
            " against the database after every run, as on SQLite."
        ),
        "",
    ]


def side_by_side(rows: list[dict]) -> list[str]:
    """A paragraph per scenario measured side by side with another."""
    by_key = {row["key"]: row for row in rows}
    lines = []
    for row in rows:
        versus = row.get("versus")
        if not versus:
            continue
        other = by_key[versus["key"]]
        lines += [
            "",
            (
                f"Side by side: **{row['label']}** against {other['label']}: **{versus['ratio']:.3f}** of its"
                f" req/s, p99 {versus['p99_ratio']:.2f} times its. In each round the two runs are one ceiling"
                " run apart, and they swap order every round; each pair of rounds gives the geometric mean"
                " of its two run-to-run ratios (which cancels an advantage of running first), and the"
                " figure is the median over pairs of rounds"
                f" ({', '.join(f'{r:.3f}' for r in versus['pair_ratios'])})."
                f" Per round ({versus['first'][0]} first in the odd ones):"
                f" {', '.join(f'{r:.3f}' for r in versus['ratios'])}; as the ratio of their ratios to the"
                f" ceiling (median over rounds), {versus['ceiling_ratio']:.3f}."
                + (f" Target: at least {versus['target']:g}." if versus["target"] else "")
            ),
        ]
    return lines


def print_summary(results: dict, log) -> None:
    log("")
    log(f"{'target':72} {'figure':>10}")
    for target, figure, verdict in [*targets(results), *earlier_targets(results)]:
        log(f"{target:72} {figure:>10}  {verdict.strip('*')}")
