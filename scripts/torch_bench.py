"""PyTorch's rates on the shapes of scripts/cuda_bench.c, for scripts/device_check.sh's table
(a reference measurement, not part of aha): the bf16 GEMM 8192^3, the dense GEMM of the MoE
layer's total shape, and causal SDPA forward+backward in bf16 at head_dim 128, 4096 tokens,
32 query / 4 KV heads. Uses the device image's own torch (no pinned install: nothing can be
installed there). Prints "torch <name> <ms> ms <TFLOP/s> TFLOP/s" lines, or one
"torch skipped: <why>" line."""
import sys

try:
    import torch
except ImportError:
    print("torch skipped: no torch here")
    sys.exit(0)
if not torch.cuda.is_available():
    print("torch skipped: torch sees no CUDA device")
    sys.exit(0)


def median_ms(fn, warmup=3, reps=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def report(name, ms, flops):
    print(f"torch {name} {ms:.3f} ms {flops / (ms * 1e-3) / 1e12:.1f} TFLOP/s", flush=True)


dev = torch.device("cuda")
torch.manual_seed(0)
n = 8192
a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
w = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
report("gemm_bf16_8192", median_ms(lambda: a @ w.t()), 2.0 * n ** 3)
del a, w

rows, hidden, inter = 16384 * 8, 2048, 768
x = torch.randn(rows, hidden, device=dev, dtype=torch.bfloat16)
w = torch.randn(inter, hidden, device=dev, dtype=torch.bfloat16) * 0.05
report("moe_dense_bf16_131072x2048x768", median_ms(lambda: x @ w.t()), 2.0 * rows * hidden * inter)
del x, w

T, heads, kv, hd = 4096, 32, 4, 128
q = torch.randn(1, heads, T, hd, device=dev, dtype=torch.bfloat16, requires_grad=True)
k = torch.randn(1, kv, T, hd, device=dev, dtype=torch.bfloat16, requires_grad=True)
v = torch.randn(1, kv, T, hd, device=dev, dtype=torch.bfloat16, requires_grad=True)
dout = torch.randn(1, heads, T, hd, device=dev, dtype=torch.bfloat16)
sdpa = torch.nn.functional.scaled_dot_product_attention


def fwd_bwd():
    out = sdpa(q, k, v, is_causal=True, enable_gqa=True)
    out.backward(dout)


fwd = 2.0 * T * T * hd * heads
report("sdpa_fwdbwd_bf16_hd128_t4096", median_ms(fwd_bwd, reps=10), 3.5 * fwd)
