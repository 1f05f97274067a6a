#!/usr/bin/env python3
"""Runs a command and prints its peak anonymous RSS (RssAnon, sampled from /proc every
10 ms) and its peak total RSS (VmHWM, which also counts file pages of memory-mapped
files such as the training cache), in MiB, on stderr as `peak_rss anon=... total=...`.

Usage: scripts/peak_rss.py COMMAND [ARGS...]; exits with the command's status."""
import subprocess
import sys
import time


def status(pid):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return fields


process = subprocess.Popen(sys.argv[1:])
anon = total = 0.0
while process.poll() is None:
    fields = status(process.pid)
    anon = max(anon, fields.get("RssAnon", 0))
    total = max(total, fields.get("VmHWM", 0))
    time.sleep(0.01)
print(f"peak_rss anon={anon:.1f} MiB total={total:.1f} MiB", file=sys.stderr)
sys.exit(process.returncode)
