#!/usr/bin/env python3
"""The card's achievable memory bandwidth, for the masked-KL GB/s ratio: a 4 GiB device-to-device
copy through PyTorch, bytes read + written, median of 10 after 3 warm-ups. One JSON line:
{"device": .., "copy_gb_s": ..}."""

import json

import torch


def main():
    n = 4 * 2**30 // 4
    src = torch.empty(n, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    times = []
    for i in range(13):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        torch.cuda.synchronize()
        if i >= 3:
            times.append(start.elapsed_time(end) / 1e3)
    med = sorted(times)[len(times) // 2]
    print(json.dumps({"device": torch.cuda.get_device_name(), "copy_gb_s": 2 * n * 4 / med / 1e9}))


if __name__ == "__main__":
    main()
