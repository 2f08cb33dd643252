"""BERT-base-sized classifier in bf16 on one GPU: kubetrain's DDP engine against DeepSpeed
ZeRO-1/2/3. NEEDS A CUDA GPU: without one it says so and exits 2, unless --cpu asks for its CPU
twin (a tiny BERT on CPU over gloo: the same code path, for scripts/gpu-check.sh's CPU run; its
figures say nothing about a GPU, and MFU is n/a: a CPU has no dense bf16 peak to compare with).

Each backend runs in a fresh process (DeepSpeed picks its accelerator on import and keeps global
state; CUDA's peak-memory counter must start at zero) through kubetrain's own engines
(`kubetrain.trainer.engine.build_engine`), doing what `WorkerLoop.step` does per step: a bf16
autocast forward, fp32 cross-entropy, the engine's backward and optimizer step (AdamW, clipping
1.0). The model is BERT-base (12 layers, hidden 768, 12 heads, FFN 3072, vocab 30522) with random
weights (no download), on random tokens.

Printed per backend: ms/step (median of the timed steps, after warm-up), peak GPU memory
(torch.cuda.max_memory_allocated over model, optimizer and steps), tokens/s, and model FLOPs
utilisation: MFU = model FLOPs per step / step time / the GPU's dense bf16 peak, with model FLOPs
per token = 6 N + 12 L h s (N: non-embedding parameters, L layers, h hidden, s sequence length;
the PaLM paper's count, which leaves out recomputation and the embedding lookup).

On one GPU, kubetrain's ddp backend trains the bare model (with one worker there is no gradient
to average, so it adds no DistributedDataParallel wrapper), and DeepSpeed's ZeRO partitions over a
world of one: the figures show each engine's own overhead and memory layout, not scaling.

    python bench/deepspeed_gpu.py [--batch 32] [--seq 128] [--steps 30] [--warmup 5]
                                  [--backends ddp zero1 zero2 zero3] [--peak-tflops 989.4]
                                  [--torch-adam] [--cpu] [--json FILE]

--json writes the settings and every backend's figures (MFU included) to FILE.

--torch-adam gives DeepSpeed torch's AdamW instead of its FusedAdam, which DeepSpeed compiles
on first use (it needs nvcc and ninja); kubetrain's ddp backend always uses torch's AdamW.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

NEEDS_GPU = (
    "bench/deepspeed_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False here); "
    "run it on a GPU machine. No figures were produced."
)
EXIT_NO_GPU = 2
RESULT_PREFIX = "RESULT "
MFU_TARGET = 0.45  # issue 18: BERT-base bf16 on one GPU, of the GPU's dense bf16 peak
# The CPU twin's BERT: BERT-base's shape, shrunk until a step takes milliseconds on a CPU core.
TINY_BERT = {
    "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
    "intermediate_size": 256, "vocab_size": 1000, "max_position_embeddings": 128,
}  # fmt: skip

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, in TFLOPS, matched
# against torch.cuda.get_device_name() in this order (the first match wins).
BF16_PEAK_TFLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM, e.g. "NVIDIA H100 80GB HBM3"
    ("H200", 989.4),
    ("GH200", 989.4),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
]


def bf16_peak_tflops(device_name: str) -> float | None:
    for needle, tflops in BF16_PEAK_TFLOPS:
        if needle in device_name:
            return tflops
    return None


def job(backend: str, batch: int, torch_adam: bool, gpu: bool = True) -> dict[str, Any]:
    # Without a GPU in the spec kubetrain's DeepSpeed config takes torch's Adam, as on CPU it must.
    distributed: dict[str, Any] = {
        "workers": 1,
        "resourcesPerWorker": {"cpu": "4", "gpu": 1 if gpu else 0},
    }
    if backend.startswith("zero"):
        deepspeed: dict[str, Any] = {"zeroStage": int(backend[4:])}
        if torch_adam:
            deepspeed["config"] = {"optimizer": {"params": {"torch_adam": True}}}
        distributed |= {"backend": "deepspeed", "deepspeed": deepspeed}
    return {
        "apiVersion": "kubetrain.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": f"bench-bert-base-{backend}"},
        "spec": {
            "model": {"name": "bert", "numClasses": 2},
            "dataset": {"source": "text_samples", "batchSize": batch},
            "training": {
                "epochs": 1,
                "precision": "bf16",
                "gradientClipNorm": 1.0,
                "optimizer": {"name": "adamw", "lr": 1e-4, "weightDecay": 0.01},
            },
            "distributed": distributed,
            "metrics": {"enabled": False},
        },
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """One backend, in this process (the parent runs each in its own); on the CPU with --cpu."""
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch import nn
    from transformers import BertConfig, BertForSequenceClassification

    from kubetrain.api import parse_job
    from kubetrain.trainer.engine import build_engine

    device = torch.device("cpu" if args.cpu else "cuda:0")
    on_gpu = device.type == "cuda"
    if on_gpu:
        torch.cuda.set_device(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        # One intra-op thread, as kubetrain's CPU workers have: on a small shared machine
        # OpenMP's spinning threads made some runs' steps 10-20x slower than others.
        torch.set_num_threads(1)
    # A world of one, as Ray Train would set up for one worker: DeepSpeed joins this group.
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0", LOCAL_RANK="0",
        WORLD_SIZE="1",
    )  # fmt: skip
    dist.init_process_group("nccl" if on_gpu else "gloo", rank=0, world_size=1)

    config = BertConfig(**(TINY_BERT if args.cpu else {}))  # the defaults are BERT-base
    config.num_labels = 2
    torch.manual_seed(0)

    class Classifier(nn.Module):
        """kubetrain's models take a dict of token tensors and return logits."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = BertForSequenceClassification(config)

        def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
            logits: torch.Tensor = self.bert(**inputs).logits
            return logits

    model = Classifier().to(device)
    # Counted before DeepSpeed partitions them (ZeRO-3 leaves empty tensors behind).
    n_params = sum(p.numel() for p in model.parameters())
    n_non_embedding = sum(
        p.numel() for name, p in model.named_parameters() if ".embeddings." not in name
    )
    spec = parse_job(job(backend, args.batch, args.torch_adam, gpu=on_gpu)).spec
    total_steps = args.warmup + args.steps
    engine = build_engine(model, spec, device, rank=0, steps_per_epoch=total_steps)
    engine.start()
    model.train()

    gen = torch.Generator(device=device).manual_seed(1)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), device=device, generator=gen)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    labels = torch.randint(0, 2, (args.batch,), device=device, generator=gen)

    def step(number: int) -> float:
        with engine.accumulating(boundary=True):
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                logits = engine.module(inputs)
            loss = F.cross_entropy(logits.float(), labels)
            engine.backward(loss)
        engine.optimizer_step(number)
        return float(loss.detach())

    def synchronize() -> None:
        if on_gpu:
            torch.cuda.synchronize(device)

    for n in range(1, args.warmup + 1):
        step(n)
    synchronize()
    times, losses = [], []
    for n in range(args.warmup + 1, total_steps + 1):
        t0 = time.perf_counter()
        losses.append(step(n))
        synchronize()
        times.append(time.perf_counter() - t0)
    step_seconds = statistics.median(times)
    tokens = args.batch * args.seq
    flops = 6 * n_non_embedding + 12 * config.num_hidden_layers * config.hidden_size * args.seq
    flops *= tokens
    dist.destroy_process_group()
    return {
        "backend": backend,
        "ms_per_step": step_seconds * 1e3,
        "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if on_gpu else None,
        "tokens_per_s": tokens / step_seconds,
        "model_tflops_per_step": flops / 1e12,
        "achieved_tflops": flops / step_seconds / 1e12,
        "params": n_params,
        "non_embedding_params": n_non_embedding,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def run_child(backend: str, args: argparse.Namespace) -> dict[str, Any] | str:
    """The measurement in a fresh process; its result, or the tail of its output on failure."""
    command = [
        sys.executable, str(Path(__file__).resolve()), "--one", backend,
        "--batch", str(args.batch), "--seq", str(args.seq), "--steps", str(args.steps),
        "--warmup", str(args.warmup), *(["--torch-adam"] if args.torch_adam else []),
        *(["--cpu"] if args.cpu else []),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
    return f"exit {proc.returncode}:\n  " + "\n  ".join(tail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--backends", nargs="+", default=["ddp", "zero1", "zero2", "zero3"])
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if unknown")
    parser.add_argument("--torch-adam", action="store_true", help="DeepSpeed uses torch's AdamW")
    parser.add_argument("--cpu", action="store_true", help="the CPU twin: a tiny BERT on CPU")
    parser.add_argument("--json", type=Path, help="also write the settings and figures here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one backend
    args = parser.parse_args()

    import torch

    if not (args.cpu or torch.cuda.is_available()):
        print(NEEDS_GPU, file=sys.stderr)
        return EXIT_NO_GPU
    if args.one:
        print(RESULT_PREFIX + json.dumps(measure(args.one, args)), flush=True)
        return 0

    from importlib.metadata import version

    if args.cpu:
        name, peak, model = "CPU (twin)", None, "tiny BERT (2 layers, hidden 64)"
    else:
        name, model = torch.cuda.get_device_name(0), "BERT-base"
        peak = args.peak_tflops or bf16_peak_tflops(name)
    print(
        f"{model} (bf16 autocast / DeepSpeed bf16) on 1 x {name}; batch {args.batch} x seq "
        f"{args.seq}, AdamW, {args.warmup} warm-up + {args.steps} timed steps (median); "
        f"torch {torch.__version__}, deepspeed {version('deepspeed')}; bf16 dense peak "
        + (f"{peak:g} TFLOPS" if peak else "n/a" if args.cpu else "unknown (pass --peak-tflops)"),
        flush=True,
    )
    print(f"{'backend':8}{'ms/step':>10}{'peak GiB':>10}{'tokens/s':>11}{'TFLOPS':>9}{'MFU':>7}")
    results: list[dict[str, Any]] = []
    failed = []
    for backend in args.backends:
        result = run_child(backend, args)
        if isinstance(result, str):
            failed.append(backend)
            print(f"{backend:8} FAILED {result}", flush=True)
            continue
        result["mfu"] = result["achieved_tflops"] / peak if peak else None
        results.append(result)
        print(
            f"{backend:8}{result['ms_per_step']:10.1f}{_or_na(result['peak_gib'], 10, '.2f')}"
            f"{result['tokens_per_s']:11.0f}{result['achieved_tflops']:9.3g}"
            f"{_or_na(result['mfu'], 7, '.1%')}",
            flush=True,
        )
    ddp = next((r for r in results if r["backend"] == "ddp"), None)
    if ddp is not None:
        print(_mfu_line(model, name, peak, ddp["mfu"]), flush=True)
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "one")}
        args.json.write_text(
            json.dumps(
                {
                    "device": name, "model": model, "bf16_peak_tflops": peak,
                    "mfu_target": MFU_TARGET, "torch": torch.__version__,
                    "deepspeed": version("deepspeed"), "settings": settings,
                    "results": results, "failed": failed,
                },
                indent=1,
            )
        )  # fmt: skip
    return 1 if failed else 0


def _or_na(value: float | None, width: int, spec: str) -> str:
    return f"{'n/a' if value is None else format(value, spec):>{width}}"


def _mfu_line(model: str, device: str, peak: float | None, mfu: float | None) -> str:
    if mfu is None or peak is None:
        why = "a CPU has no dense bf16 peak" if device.startswith("CPU") else "unknown peak"
        return f"MFU of {model} (ddp) on 1 x {device}: n/a ({why})"
    verdict = "met" if mfu >= MFU_TARGET else "NOT met"
    return (
        f"MFU of {model} bf16 (ddp) on 1 x {device}: {mfu:.1%} of its {peak:g} TFLOPS dense "
        f"bf16 peak; target {MFU_TARGET:.0%}: {verdict}"
    )


if __name__ == "__main__":
    sys.exit(main())
