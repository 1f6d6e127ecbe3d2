#!/usr/bin/env python3
"""Runs a command and reads its peak GPU memory through NVML, the same way for any program.

    python3 scripts/nvml_peak.py -- ./mdu bench-step --device cuda
    python3 scripts/nvml_peak.py -- python3 scripts/bench_step.py --device cuda

Every 5 ms it asks NVML for the compute processes on every GPU and keeps the largest
`usedGpuMemory` of the command's process (the process peak, what nvidia-smi shows per process),
and the largest device-wide used memory minus what was used before the command started (a
fallback where the process table is empty, e.g. inside some containers). The command's own output
passes through; one JSON line follows on stdout:
    {"nvml_process_peak_mib": .., "nvml_device_peak_mib": .., "samples": .., "returncode": ..}
Needs nvidia-ml-py (`import pynvml`), which the GPU machines' image has.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pynvml


def main():
    if "--" not in sys.argv:
        sys.exit("usage: nvml_peak.py -- COMMAND [ARGS...]")
    cmd = sys.argv[sys.argv.index("--") + 1 :]
    pynvml.nvmlInit()
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    baseline = [pynvml.nvmlDeviceGetMemoryInfo(h).used for h in handles]
    child = subprocess.Popen(cmd)
    peak = {"process": 0, "device": 0, "samples": 0}
    done = threading.Event()

    def poll():
        while not done.is_set():
            for h, base in zip(handles, baseline):
                try:
                    for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h):
                        if p.pid == child.pid and p.usedGpuMemory:
                            peak["process"] = max(peak["process"], p.usedGpuMemory)
                    peak["device"] = max(peak["device"], pynvml.nvmlDeviceGetMemoryInfo(h).used - base)
                except pynvml.NVMLError:
                    pass
            peak["samples"] += 1
            time.sleep(0.005)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    returncode = child.wait()
    done.set()
    thread.join()
    print(
        json.dumps(
            {
                "nvml_process_peak_mib": peak["process"] / 2**20 if peak["process"] else None,
                "nvml_device_peak_mib": peak["device"] / 2**20,
                "samples": peak["samples"],
                "returncode": returncode,
                "cmd": cmd,
            }
        ),
        flush=True,
    )
    sys.exit(returncode)


if __name__ == "__main__":
    main()
