"""Agent CPU and memory watching the 16 cameras of one cabinet, against the same agent without them.

Starts `citygate-sim cameras --count 16` (ONVIF with HTTP Digest and a PullPoint per camera,
RTSP OPTIONS/DESCRIBE with Digest) in its own process, then, side by side for the same window:
- the agent: `citygate-agent run` with one `cameras` bus of those 16 cameras, at the driver's
  defaults (a poll of each camera every 60 s, a 10 s PullMessages long-poll held open on each);
- the baseline: the same `citygate-agent run`, same gateway, journal and local API, no bus.
Each is measured from /proc: CPU = utime + stime over the window (after a warm-up that holds
the first round: identity, capabilities, subscriptions), peak RSS = VmHWM. Target: the cameras
cost under 1 CPU s/min and under 10 MB more than the baseline. For scale it also prints what
importing onvif-zeep-async alone costs a Python process.

    python bench/bench_cameras.py [--seconds 60] [--full]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_polling import BIN, closed_port, cpu_seconds, peak_rss_mb, stop

CAMERAS = 16
TARGET_CPU = 1.0
TARGET_MB = 10.0


def agent_config(workdir: Path, name: str, bus: str) -> Path:
    state = workdir / name
    state.mkdir()
    text = "\n".join([
        "[gateway]", 'id = "gw-bench-0001"', 'commune = "21231"', f'state_dir = "{state}"', "",
        "[uplink]", f'url = "http://127.0.0.1:{closed_port()}"', f'token_file = "{workdir / "token"}"', "",
        "[local_api]", f'socket = "{state / "agent.sock"}"', "", bus])
    path = workdir / f"{name}.toml"
    path.write_text(text + "\n")
    return path


def start_simulator(workdir: Path) -> subprocess.Popen[str]:
    sim = subprocess.Popen([str(BIN / "citygate-sim"), "cameras", "--count", str(CAMERAS), "--out", str(workdir)],
                           stdout=subprocess.PIPE, text=True)
    assert sim.stdout is not None
    line = sim.stdout.readline()
    if "wrote" not in line:
        sim.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return sim


def onvif_import_mb() -> float:
    code = ("import re, pathlib, onvif; "
            "print(int(re.search(r'VmHWM:\\s+(\\d+)', pathlib.Path('/proc/self/status').read_text()).group(1)))")
    bare = ("import re, pathlib; "
            "print(int(re.search(r'VmHWM:\\s+(\\d+)', pathlib.Path('/proc/self/status').read_text()).group(1)))")
    kb = [int(subprocess.run([sys.executable, "-c", c], capture_output=True, text=True, check=True).stdout)
          for c in (code, bare)]
    return (kb[0] - kb[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window (default 60: one poll round)")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring (startup excluded)")
    parser.add_argument("--full", action="store_true", help="measure 180 s")
    args = parser.parse_args()
    seconds = 180.0 if args.full else args.seconds

    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cameras-") as tmp:
        workdir = Path(tmp)
        (workdir / "token").write_text("bench\n")
        (workdir / "token").chmod(0o600)
        sim = start_simulator(workdir)
        try:
            bus = (workdir / "cameras-bus.toml").read_text()
            cams = agent_config(workdir, "cameras", bus)
            bare = agent_config(workdir, "bare", "")
            for config in (cams, bare):
                procs.append(subprocess.Popen([str(BIN / "citygate-agent"), "run", "--config", str(config),
                                               "--log-level", "warning"], text=True))
            time.sleep(args.warmup)
            for name, p in zip(("agent with cameras", "agent without"), procs, strict=True):
                if p.poll() is not None:
                    raise SystemExit(f"{name} exited with {p.returncode} during warm-up")
            cpu0 = {p.pid: cpu_seconds(p.pid) for p in procs}
            t0 = time.monotonic()
            time.sleep(seconds)
            cpu1 = {p.pid: cpu_seconds(p.pid) for p in procs}
            elapsed = time.monotonic() - t0
            rss = {p.pid: peak_rss_mb(p.pid) for p in procs}
        finally:
            for p in procs:
                stop(p)
            stop(sim)

    per_min = {pid: (cpu1[pid] - cpu0[pid]) / elapsed * 60 for pid in cpu0}
    a, b = procs
    extra_cpu, extra_mb = per_min[a.pid] - per_min[b.pid], rss[a.pid] - rss[b.pid]
    print(f"watching {CAMERAS} cameras of one cabinet (a poll every 60 s, a 10 s PullPoint")
    print(f"long-poll each), measured {elapsed:.0f} s after {args.warmup:.0f} s warm-up")
    print(f"  agent with the cameras bus : {per_min[a.pid]:5.2f} CPU s/min   peak RSS {rss[a.pid]:5.1f} MB")
    print(f"  same agent without cameras : {per_min[b.pid]:5.2f} CPU s/min   peak RSS {rss[b.pid]:5.1f} MB")
    ratio = per_min[a.pid] / per_min[b.pid] if per_min[b.pid] else float("inf")
    print(f"  cameras cost               : {extra_cpu:+5.2f} CPU s/min   {extra_mb:+5.1f} MB")
    print(f"  target                     : < {TARGET_CPU:g} CPU s/min, < {TARGET_MB:g} MB more")
    print(f"  ratio with / without       : {ratio:5.2f}x CPU            {rss[a.pid] / rss[b.pid]:5.2f}x RSS")
    print(f"  for scale: importing onvif-zeep-async alone costs {onvif_import_mb():.1f} MB")
    verdict = extra_cpu < TARGET_CPU and extra_mb < TARGET_MB
    print(f"  {'within' if verdict else 'OVER'} target")


if __name__ == "__main__":
    main()
