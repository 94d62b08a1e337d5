"""Logistic regression on generated data, in plain Python (no packages needed).

Prints the loss per epoch, writes outputs/model.json, and checkpoints to
$AML_CHECKPOINT_DIR after every epoch so that a requeued attempt resumes
from its last epoch instead of starting over.
"""
import argparse
import json
import math
import os
import random
import time


def make_data(n, seed):
    rng = random.Random(seed)
    true_w = [1.5, -2.0, 0.75]
    xs, ys = [], []
    for _ in range(n):
        x = [rng.gauss(0, 1) for _ in true_w]
        z = sum(w * v for w, v in zip(true_w, x)) + 0.25
        ys.append(1 if rng.random() < 1 / (1 + math.exp(-z)) else 0)
        xs.append(x)
    return xs, ys


def loss_and_grad(w, b, xs, ys):
    loss, gw, gb = 0.0, [0.0] * len(w), 0.0
    for x, y in zip(xs, ys):
        z = sum(wi * xi for wi, xi in zip(w, x)) + b
        p = 1 / (1 + math.exp(-z))
        loss -= y * math.log(p + 1e-12) + (1 - y) * math.log(1 - p + 1e-12)
        for i, xi in enumerate(x):
            gw[i] += (p - y) * xi
        gb += p - y
    n = len(xs)
    return loss / n, [g / n for g in gw], gb / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds of extra work per epoch")
    ap.add_argument("--no-checkpoint", action="store_true", help="neither resume nor checkpoint (start over on every attempt)")
    args = ap.parse_args()

    ckpt_dir = "" if args.no_checkpoint else os.environ.get("AML_CHECKPOINT_DIR", "")
    ckpt = os.path.join(ckpt_dir, "checkpoint.json") if ckpt_dir else ""
    w, b, start = [0.0, 0.0, 0.0], 0.0, 0
    if ckpt and os.path.exists(ckpt):
        with open(ckpt) as f:
            state = json.load(f)
        w, b, start = state["w"], state["b"], state["epoch"]
        print(f"resuming from checkpoint at epoch {start}", flush=True)

    print(f"attempt {os.environ.get('AML_ATTEMPT', '1')} of run {os.environ.get('AML_RUN_ID', '-')}", flush=True)
    xs, ys = make_data(args.samples, seed=7)
    loss = float("nan")
    for epoch in range(start, args.epochs):
        loss, gw, gb = loss_and_grad(w, b, xs, ys)
        w = [wi - args.lr * g for wi, g in zip(w, gw)]
        b -= args.lr * gb
        print(f"epoch {epoch + 1}/{args.epochs} loss {loss:.4f}", flush=True)
        if args.sleep:
            time.sleep(args.sleep)
        if ckpt:
            tmp = ckpt + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"w": w, "b": b, "epoch": epoch + 1}, f)
            os.replace(tmp, ckpt)

    out = os.environ.get("AML_OUTPUT_DIR", "outputs")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump({"weights": w, "bias": b, "final_loss": loss, "epochs": args.epochs}, f, indent=2)
    print(f"done: final loss {loss:.4f}, model written to outputs/model.json", flush=True)


if __name__ == "__main__":
    main()
