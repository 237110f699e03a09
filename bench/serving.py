"""The serving model: the README's server (gunicorn + uvicorn workers, config.asgi) against the
gthread server it replaced (config.wsgi), and what open event streams cost the other pages.

1. Pages: the same endpoints under wrk against both servers, up at once with the same number
   of processes (WEB_CONCURRENCY) and threads (gthread's --threads; the ASGI server's pool for
   sync views, WEB_THREADS, config/asgi_site.py); runs interleaved, the order flipped each round. Each round gives asgi req/s over gthread req/s; the figure
   `asgi_over_gthread_<endpoint>` is the median over the rounds ("not slower": >= 0.95, the 5 %
   being this shared machine's run-to-run noise, not a slowdown allowed).
2. Streams: the task poll's p99 under wrk against the ASGI server without, then with, N open
   event streams (/tasks/events), alternating the order each round. The streams belong to
   several people (the app caps a person's open streams, generator/views/events.py), each one
   checked to be streaming (a 200, text/event-stream, and the stream's `ready` event) before
   the load starts and still open after it. `poll_p99_increase_with_streams` is the median p99
   with over the median p99 without, minus one (target <= 0.20).

`python -m bench.serving` seeds a small work directory of its own and prints the figures;
`python -m bench` runs the same as its serving phase.
"""

from __future__ import annotations

import argparse
import json
import math
import selectors
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import processes, servers, web, workers
from .load import LoadResult, LoadSettings, run_wrk, write_status_script
from .workdir import WorkDir

ENDPOINTS = ("gallery_first_page", "task_poll", "api_task", "thumbnail")
POLL = "task_poll"
STREAM_PATH = "/tasks/events"
# The gthread server's threads per process: WEB_THREADS' default before the ASGI move.
GTHREAD_THREADS = 8
NOT_SLOWER = 0.95
MAX_P99_INCREASE = 0.20
STREAM_OPEN_SECONDS = 60.0


@dataclass(frozen=True)
class Settings:
    load: LoadSettings
    rounds: int
    warmup_seconds: int
    streams: int
    # A p99 from one short wrk run swings by +-40 % on a shared machine: more rounds than the pages.
    stream_rounds: int = 0  # 0: as many as `rounds`
    processes: int = 1
    threads: int = GTHREAD_THREADS


def figure_name(endpoint: str) -> str:
    return f"asgi_over_gthread_{endpoint}"


FIGURE_KEYS = (*(figure_name(endpoint) for endpoint in ENDPOINTS), "poll_p99_increase_with_streams")
TARGETS = {
    **{figure_name(endpoint): ("figure", ">=", NOT_SLOWER) for endpoint in ENDPOINTS},
    "poll_p99_increase_with_streams": ("figure", "<=", MAX_P99_INCREASE),
}


# --- pure: from runs to figures -----------------------------------------------------------


def compare_servers(asgi: list[dict], gthread: list[dict]) -> dict:
    """Round by round, the ASGI server's req/s over the gthread server's, and the median; the
    median req/s and latencies of each."""
    ratios = [a["requests_per_second"] / g["requests_per_second"] for a, g in zip(asgi, gthread, strict=True)]
    return {
        "asgi": _medians(asgi),
        "gthread": _medians(gthread),
        "round_ratios": [round(ratio, 3) for ratio in ratios],
        "ratio": round(statistics.median(ratios), 3),
    }


def p99_increase(without: list[dict], with_streams: list[dict]) -> float:
    """The median p99 with the streams open over the median p99 without, minus one."""
    before = statistics.median(run["p99_ms"] for run in without)
    after = statistics.median(run["p99_ms"] for run in with_streams)
    return round(after / before - 1, 3)


def _medians(runs: list[dict]) -> dict:
    return {
        "requests_per_second": round(statistics.median(r["requests_per_second"] for r in runs), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
        "runs": runs,
    }


def serving_figures(serving: dict) -> dict[str, float]:
    """`asgi_over_gthread_<endpoint>` for each endpoint, and `poll_p99_increase_with_streams`."""
    figures = {figure_name(key): row["ratio"] for key, row in serving["endpoints"].items()}
    figures["poll_p99_increase_with_streams"] = serving["streams"]["p99_increase"]
    return figures


def verdicts(figures: dict[str, float]) -> dict[str, dict]:
    """Each serving figure against its target (the same shape as report.check_targets')."""
    results = {}
    for name, (_, op, bound) in TARGETS.items():
        value = figures[name]
        passed = value >= bound if op == ">=" else value <= bound
        results[name] = {"value": value, "target": f"{op} {bound:g}", "pass": passed}
    return results


def problems_in(serving: dict) -> list[str]:
    """What makes the serving measurement invalid (as opposed to a missed target)."""
    problems = [
        f"serving {key} ({server}): a wrk run had responses other than 200 or socket errors"
        for key, row in serving["endpoints"].items()
        for server in ("asgi", "gthread")
        if not all(run["valid"] for run in row[server]["runs"])
    ]
    streams = serving["streams"]
    problems += [
        f"serving streams: a poll run {label} them had responses other than 200 or socket errors"
        for label in ("without", "with")
        if not all(run["valid"] for run in streams[label])
    ]
    if streams["still_open_min"] < streams["count"]:
        problems.append(
            f"serving streams: only {streams['still_open_min']} of {streams['count']} were still open after a run"
        )
    return problems


def table(serving: dict, verdicts: dict[str, dict]) -> list[str]:
    streams = serving["streams"]
    lines = [
        f"serving: gunicorn + uvicorn (config.asgi) against gthread (config.wsgi, {serving['threads']} threads), "
        f"{serving['processes']} process(es), {serving['rounds']} interleaved round(s); req/s median over rounds",
        f"{'endpoint':<24} {'asgi req/s':>10} {'p50':>7} {'p99':>7}  {'gthread req/s':>13} {'p50':>7} {'p99':>7}"
        f"  {'ratio':>6}  target",
    ]
    for key, row in serving["endpoints"].items():
        a, g = row["asgi"], row["gthread"]
        lines.append(
            f"{key:<24} {a['requests_per_second']:>10.1f} {a['p50_ms']:>7.2f} {a['p99_ms']:>7.2f}  "
            f"{g['requests_per_second']:>13.1f} {g['p50_ms']:>7.2f} {g['p99_ms']:>7.2f}  {row['ratio']:>6.3f}  "
            f"{_verdict(verdicts[figure_name(key)])}"
        )
    lines.append(
        f"task poll p99 with {streams['count']} open event streams ({streams['people']} people), "
        f"median of {streams.get('rounds', serving['rounds'])} round(s): "
        f"{streams['p99_without_ms']:.2f} ms -> {streams['p99_with_ms']:.2f} ms, "
        f"{streams['p99_increase']:+.1%}  {_verdict(verdicts['poll_p99_increase_with_streams'])}"
    )
    return lines


def _verdict(target: dict) -> str:
    return f"{'pass' if target['pass'] else 'MISS'} ({target['target']})"


# --- event streams held open ---------------------------------------------------------------


class EventStreams:
    """N event streams held open by one selector loop in a thread: each request sent, its
    answer checked (200, text/event-stream, the `ready` event), then whatever arrives read and
    dropped (heartbeats), so that no stream stalls on a full buffer."""

    def __init__(self, url: str, session_keys: list[str]) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.session_keys = session_keys
        self.selector = selectors.DefaultSelector()
        self.received: dict[socket.socket, bytearray] = {}
        self.closed: set[socket.socket] = set()
        self.ready_seconds: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def request(self, session_key: str) -> bytes:
        host, port = self.address
        return (
            f"GET {STREAM_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
            f"Cookie: sessionid={session_key}\r\nX-Forwarded-Proto: https\r\n\r\n"
        ).encode()

    def open(self, timeout: float = STREAM_OPEN_SECONDS) -> None:
        started = time.monotonic()
        for key in self.session_keys:
            sock = socket.create_connection(self.address, timeout=10)
            sock.sendall(self.request(key))
            sock.setblocking(False)
            self.received[sock] = bytearray()
            self.selector.register(sock, selectors.EVENT_READ, data=sock)
        waiting = set(self.received)
        while waiting:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise RuntimeError(f"{len(waiting)} of {len(self.received)} event streams sent no ready event")
            for selected, _ in self.selector.select(min(left, 1.0)):
                self._read(selected.data)
                if selected.data in waiting and self._is_ready(selected.data):
                    waiting.discard(selected.data)
                    self.ready_seconds.append(time.monotonic() - started)
            broken = waiting & self.closed
            if broken:
                sample = bytes(self.received[next(iter(broken))][:300])
                raise RuntimeError(f"{len(broken)} event streams closed before streaming; one answered {sample!r}")
        for sock in self.received:
            self.received[sock] = bytearray()  # only liveness matters from here on
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.closed.add(sock)
            self.selector.unregister(sock)
            return
        if not self._thread:
            self.received[sock] += data

    def _is_ready(self, sock: socket.socket) -> bool:
        head, _, body = bytes(self.received[sock]).partition(b"\r\n\r\n")
        if not head:
            return False
        status = head.split(b"\r\n", 1)[0]
        if not status.startswith(b"HTTP/1.1 200"):
            self.closed.add(sock)  # counted as broken: the answer was not a stream
            return False
        return b"text/event-stream" in head.lower() and b"event: ready" in body

    def _drain(self) -> None:
        while not self._stop.is_set():
            for selected, _ in self.selector.select(0.2):
                self._read(selected.data)

    def still_open(self) -> int:
        return len(self.received) - len(self.closed)

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        for sock in self.received:
            sock.close()
        self.selector.close()

    def __enter__(self) -> EventStreams:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- the measurement ----------------------------------------------------------------------


def stream_people(workdir: WorkDir, streams: int) -> dict:
    """Signed-in sessions for enough people that `streams` streams fit under the per-person cap."""
    return workers.client(workdir, ["bench.serving", "people", "--streams", str(streams)], "serving-people")


def measure_serving(workdir: WorkDir, seed: dict, settings: Settings, log) -> dict:
    """Both servers up at once; the endpoints loaded in interleaved rounds; then the poll's
    p99 without and with the open streams. The raw runs and their summaries."""
    people = stream_people(workdir, settings.streams)
    script = write_status_script(workdir.root)
    # The same processes and threads for both: gthread's --threads, the ASGI pool's WEB_THREADS.
    env = {"WEB_CONCURRENCY": settings.processes, "WEB_THREADS": settings.threads}
    asgi = servers.start_app(workdir, servers.free_port(), **env)
    try:
        gthread = servers.start_app_gthread(workdir, servers.free_port(), settings.threads, **env)
    except BaseException:
        asgi.stop()
        raise
    try:
        endpoints = {key: web.app_endpoints(seed)[key] for key in ENDPOINTS}
        load = settings.load
        log(
            f"serving: asgi against gthread ({settings.processes} process(es), {settings.threads} threads), "
            f"wrk -t{load.threads} -c{load.connections} -d{load.seconds}s, {settings.rounds} round(s)"
        )
        runs = _load_both(asgi, gthread, endpoints, settings, script, log)
        streams = _streams(asgi, endpoints[POLL], people["session_keys"], settings, script, log)
    finally:
        asgi.stop()
        gthread.stop()
    return {
        "processes": settings.processes,
        "threads": settings.threads,
        "rounds": settings.rounds,
        "load": {"threads": load.threads, "connections": load.connections, "seconds": load.seconds},
        "endpoints": {key: compare_servers(runs[key]["asgi"], runs[key]["gthread"]) for key in ENDPOINTS},
        "streams": {**streams, "people": people["people"], "per_person": people["per_person"]},
    }


def _load_both(
    asgi: processes.Child,
    gthread: processes.Child,
    endpoints: dict[str, web.Endpoint],
    settings: Settings,
    script: Path,
    log,
) -> dict[str, dict[str, list[dict]]]:
    servers_by_name = {"asgi": asgi, "gthread": gthread}
    for endpoint in endpoints.values():
        for server in servers_by_name.values():
            web.check(server.url, endpoint)
            run_wrk(
                server.url + endpoint.path, endpoint.headers, settings.load, script, seconds=settings.warmup_seconds
            )
    runs: dict[str, dict[str, list[dict]]] = {key: {"asgi": [], "gthread": []} for key in endpoints}
    for n in range(settings.rounds):
        order = ("asgi", "gthread") if n % 2 == 0 else ("gthread", "asgi")
        for key, endpoint in endpoints.items():
            for name in order:
                result = run_wrk(servers_by_name[name].url + endpoint.path, endpoint.headers, settings.load, script)
                runs[key][name].append(result.as_dict())
                _log_run(log, f"{key} {name}", result)
    return runs


def _streams(
    asgi: processes.Child,
    poll: web.Endpoint,
    session_keys: list[str],
    settings: Settings,
    script: Path,
    log,
) -> dict:
    rounds = settings.stream_rounds or settings.rounds
    log(f"serving: the poll's p99 without and with {settings.streams} open event streams, {rounds} round(s)")
    keys = session_keys[: settings.streams]
    url = asgi.url + poll.path
    without: list[dict] = []
    with_streams: list[dict] = []
    ready_seconds: list[float] = []
    still_open: list[int] = []

    def load_plain() -> None:
        result = run_wrk(url, poll.headers, settings.load, script)
        without.append(result.as_dict())
        _log_run(log, "poll without streams", result)

    def load_with_streams() -> None:
        with EventStreams(asgi.url, keys) as streams:
            ready_seconds.append(max(streams.ready_seconds))
            result = run_wrk(url, poll.headers, settings.load, script)
            still_open.append(streams.still_open())
        with_streams.append(result.as_dict())
        _log_run(log, f"poll with {len(keys)} streams", result)

    for n in range(rounds):
        steps = (load_plain, load_with_streams) if n % 2 == 0 else (load_with_streams, load_plain)
        for step in steps:
            step()
    return {
        "count": len(keys),
        "rounds": rounds,
        "without": without,
        "with": with_streams,
        "p99_without_ms": round(statistics.median(run["p99_ms"] for run in without), 2),
        "p99_with_ms": round(statistics.median(run["p99_ms"] for run in with_streams), 2),
        "p99_increase": p99_increase(without, with_streams),
        "all_ready_seconds_max": round(max(ready_seconds), 2),
        "still_open_min": min(still_open),
    }


def _log_run(log, label: str, result: LoadResult) -> None:
    log(
        f"  {label:<32} {result.requests_per_second:9.1f} req/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
        + ("" if result.valid else f"  INVALID: {result.not_200} not 200, {result.socket_errors} socket errors")
    )


# --- in the app's environment: the streams' people -----------------------------------------


def make_people(streams: int) -> dict:
    """As many people as the per-person cap needs for `streams` streams, each with a session;
    one session key per stream (a person's repeated up to the cap)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore

    from generator.views.events import MAX_STREAMS_PER_PERSON

    count = math.ceil(streams / MAX_STREAMS_PER_PERSON)
    password = make_password("bench stream listener")
    model = get_user_model()
    people = model.objects.bulk_create(
        [model(username=f"bench-listener-{time.time_ns()}-{n}", password=password) for n in range(count)]
    )
    keys = []
    for person in people:
        session = SessionStore()
        session[SESSION_KEY] = str(person.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = person.get_session_auth_hash()
        session.create()
        keys += [session.session_key] * MAX_STREAMS_PER_PERSON
    return {"people": count, "per_person": MAX_STREAMS_PER_PERSON, "session_keys": keys[:streams]}


# --- standalone ---------------------------------------------------------------------------


def seed_small(workdir: WorkDir, users: int, images: int, measured: int) -> dict:
    argv = ["bench.seed", "--users", str(users), "--images", str(images), "--measured", str(measured)]
    return workers.client(workdir, argv, "seed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    people = sub.add_parser("people", help="(internal, in the app's environment) sessions for the streams")
    people.add_argument("--streams", type=int, required=True)
    people.add_argument("--out", type=Path, required=True)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream-rounds", type=int, default=6, help="rounds of the poll without/with the streams")
    parser.add_argument("--seconds", type=int, default=5, help="each wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=GTHREAD_THREADS, help="the gthread server's")
    parser.add_argument("--images", type=int, default=5_000, help="seeded in all")
    parser.add_argument("--output", type=Path, help="write the results here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.command == "people":
        import django

        django.setup()
        args.out.write_text(json.dumps(make_people(args.streams)))
        return 0

    def log(message: str) -> None:
        print(message, flush=True)

    settings = Settings(
        load=LoadSettings(threads=2, connections=args.connections, seconds=args.seconds),
        rounds=args.rounds,
        warmup_seconds=1,
        streams=args.streams,
        stream_rounds=args.stream_rounds,
        processes=args.processes,
        threads=args.threads,
    )
    workdir = WorkDir.create()
    try:
        log(f"seeding {args.images:,} images in {workdir.root}")
        seed = seed_small(workdir, users=5, images=args.images, measured=args.images // 5)
        servers.collect_static(workdir)
        serving = measure_serving(workdir, seed, settings, log)
    finally:
        processes.stop_all()
        if not args.keep:
            workdir.remove()
    serving["figures"] = serving_figures(serving)
    if args.output:
        args.output.write_text(json.dumps(serving, indent=2) + "\n")
    print("\n" + "\n".join(table(serving, verdicts(serving["figures"]))))
    problems = problems_in(serving)
    for problem in problems:
        print(f"INVALID: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
