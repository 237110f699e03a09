"""wrk: a fixed number of connections for a fixed time against one URL, and its figures.

`wrk --latency` prints requests/s and the latency distribution; a small Lua script adds the
count of responses whose status was not 200 (wrk itself counts 3xx as fine, and a 302 to the
sign-in page is exactly the mistake a benchmark must not miss). A run with any such response
or any socket error is invalid.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

# wrk calls response() for every reply on each thread; done() sums the threads' counters.
STATUS_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) not_ok = 0 end
function response(status, headers, body) if status ~= 200 then not_ok = not_ok + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("not_ok") end
  io.write(string.format("BENCH_NOT_200 %d\\n", total))
end
"""

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = re.compile(r"([\d.]+)(us|ms|s|m|h)")


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    not_200: int
    socket_errors: int

    @property
    def valid(self) -> bool:
        return self.requests > 0 and self.not_200 == 0 and self.socket_errors == 0

    def as_dict(self) -> dict:
        return {**asdict(self), "valid": self.valid}


def to_ms(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(output: str) -> LoadResult:
    """The figures from `wrk --latency -s status.lua` output; ValueError if any is missing."""

    def find(pattern: str) -> re.Match:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output has no match for {pattern!r}:\n{output}")
        return match

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return LoadResult(
        requests_per_second=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=to_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=to_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        requests=int(find(r"^\s+(\d+) requests in").group(1)),
        not_200=int(find(r"^BENCH_NOT_200 (\d+)").group(1)),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


@dataclass(frozen=True)
class LoadSettings:
    threads: int
    connections: int
    seconds: int


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: run scripts/install-wrk (Debian's wrk package).")
    return found


def run_wrk(
    url: str, headers: dict[str, str], load: LoadSettings, script: Path, seconds: int | None = None
) -> LoadResult:
    argv = [
        wrk_binary(),
        "--latency",
        "-t",
        str(load.threads),
        "-c",
        str(load.connections),
        "-d",
        f"{seconds or load.seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    completed = subprocess.run([*argv, url], capture_output=True, text=True, timeout=(seconds or load.seconds) + 60)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}")
    return parse_wrk(completed.stdout)


def write_status_script(directory: Path) -> Path:
    path = directory / "status.lua"
    path.write_text(STATUS_SCRIPT)
    return path
