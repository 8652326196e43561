#!/usr/bin/python3
"""Workloads A, B, C and D with PyTorch, for bench/run_suite.py.

The same workloads as bench/workloads.hpp, written as a PyTorch user would:
nn.Sequential, torch.optim.Adam, a plain training loop. Prints one JSON line,
with the same keys as the C++ programs. Matched to minidl where it is a choice
and not a cost: Glorot-uniform kernels and zero biases, Adam's ε = 1e-7,
BatchNorm's ε = 1e-3 and momentum 0.01 (Keras's 0.99 in PyTorch's
convention). The Dense-10 softmax + categorical cross-entropy of workload B
is PyTorch's CrossEntropyLoss on the logits; predict applies the softmax.
Workload C's images are PyTorch's native NCHW (N x 1 x 28 x 28), minidl's
are channels-last: each library in its own layout, the same arithmetic.
Workload D is what a PyTorch user writes for transfer learning: the frozen
base in eval() with requires_grad False, its forward under torch.no_grad()
on every batch of every epoch (PyTorch has no cache of it), and the head
trained with Adam.

Threads: torch.set_num_threads(n); run_suite.py also sets OPENBLAS_NUM_THREADS
(Debian's PyTorch sends fp32 matrix products to the system BLAS).
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import time

import numpy as np
import torch
from torch import nn

# The numbers of bench/workloads.hpp.
A = dict(inputs=100, hidden=1000, outputs=1, batch=32, lr=1e-3, default_steps=2000, smoke_steps=5, blocks=10)
B = dict(inputs=784, hidden=512, classes=10, batch=128, dropout=0.2, lr=1e-3, default_epochs=1,
         smoke_samples=512, predict_batch=128)
C = dict(height=28, width=28, filters1=32, filters2=64, kernel=3, pool=2, classes=10, batch=64, lr=1e-3,
         default_steps=100, smoke_steps=2, blocks=10)
D = dict(height=28, width=28, filters=(16, 32, 64), kernel=3, pool=2, classes=10, hidden=64, dropout=0.3,
         bn_momentum=0.1, batch=32, epochs=10, lr=1e-3, default_samples=12000, pretrain_samples=2048,
         smoke_samples=256, smoke_epochs=2)  # bn_momentum: Keras's 0.9 in PyTorch's convention


def glorot(model):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def median_us_per_call(blocks, per_block, step):
    """Median over blocks of the mean µs per call (as bench/common.hpp)."""
    us = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(per_block):
            step()
        us.append((time.perf_counter() - start) * 1e6 / per_block)
    return statistics.median(us)


def max_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def workload_a(args):
    steps = A["smoke_steps"] if args.smoke else (args.steps or A["default_steps"])
    steps = max(steps, A["blocks"])
    per_block = steps // A["blocks"]
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.uniform(-1, 1, (A["batch"], A["inputs"])).astype(np.float32))
    y = x[:, :10].sum(dim=1, keepdim=True)
    torch.manual_seed(42)
    model = glorot(nn.Sequential(nn.Linear(A["inputs"], A["hidden"]), nn.ReLU(), nn.Linear(A["hidden"], A["outputs"])))
    optimizer = torch.optim.Adam(model.parameters(), lr=A["lr"], eps=1e-7)
    loss_fn = nn.MSELoss()

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    first_loss = train_step().item()
    for _ in range(per_block):
        train_step()
    losses = []
    train_us = median_us_per_call(A["blocks"], per_block, lambda: losses.append(train_step()))
    last_loss = losses[-1].item()

    model.eval()
    checksum = []
    with torch.inference_mode():
        infer_us = median_us_per_call(A["blocks"], per_block, lambda: checksum.append(model(x)[0, 0]))
    return dict(workload="A", impl="pytorch", threads=args.threads, steps=A["blocks"] * per_block,
                train_us=train_us, infer_us=infer_us, first_loss=first_loss, last_loss=last_loss,
                checksum=float(sum(c.item() for c in checksum)), max_rss_kib=max_rss_kib())


def read_idx(path, header_bytes):
    """The data bytes of a gzip'd IDX file of unsigned bytes (the header is skipped)."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header_bytes)


def load_fashion_mnist(folder, limit):
    """(train_x, train_y, test_x, test_y): images N x 784 in [0, 1], int64 labels; at most `limit` of each split."""
    def images(name):
        x = read_idx(os.path.join(folder, name), 16).reshape(-1, 784)[:limit]
        return torch.from_numpy(x.astype(np.float32) / np.float32(255))

    def labels(name):
        return torch.from_numpy(read_idx(os.path.join(folder, name), 8)[:limit].astype(np.int64))

    return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
            images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))


def train_epoch(forward, optimizer, x, y, batch, generator):
    """One shuffled epoch of Adam steps on the cross-entropy of forward(x batch); returns the
    sample-weighted mean of the batches' losses (as fit's History)."""
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    order = torch.randperm(n, generator=generator)
    loss_sum = torch.zeros(())
    for begin in range(0, n, batch):
        index = order[begin:begin + batch]
        xb, yb = x[index], y[index]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(xb), yb)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * xb.shape[0]
    return loss_sum.item() / n


def conv_block(inputs, filters, kernel, momentum):
    """Conv2d 'same' -> BatchNorm2d (Keras's ε) -> ReLU."""
    return [nn.Conv2d(inputs, filters, kernel, padding="same"), nn.BatchNorm2d(filters, eps=1e-3, momentum=momentum),
            nn.ReLU()]


def workload_b(args):
    # As B::load: a smoke run keeps 512 samples of each split, --steps N keeps N batches' worth.
    limit = B["smoke_samples"] if args.smoke else (args.steps * B["batch"] if args.steps else None)
    train_x, train_y, test_x, test_y = load_fashion_mnist(args.data, limit)
    epochs = 1 if args.smoke else (args.epochs or B["default_epochs"])
    torch.manual_seed(42)
    h, p = B["hidden"], B["dropout"]

    def bn():
        return nn.BatchNorm1d(h, eps=1e-3, momentum=0.01)

    model = glorot(nn.Sequential(
        nn.Linear(B["inputs"], h), bn(), nn.ReLU(), nn.Dropout(p),
        nn.Linear(h, h), bn(), nn.ReLU(), nn.Dropout(p),
        nn.Linear(h, B["classes"])))
    optimizer = torch.optim.Adam(model.parameters(), lr=B["lr"], eps=1e-7)
    generator = torch.Generator().manual_seed(1)

    n = train_x.shape[0]
    epoch_s, last_loss = [], 0.0
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        last_loss = train_epoch(model, optimizer, train_x, train_y, B["batch"], generator)
        epoch_s.append(time.perf_counter() - start)

    model.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        outputs = torch.cat([torch.softmax(model(test_x[b:b + B["predict_batch"]]), dim=1)
                             for b in range(0, test_x.shape[0], B["predict_batch"])])
    predict_s = time.perf_counter() - start
    accuracy = (outputs.argmax(dim=1) == test_y).double().mean().item()
    return dict(workload="B", impl="pytorch", threads=args.threads, train_samples=n, epoch_s=epoch_s,
                last_loss=last_loss, test_samples=test_x.shape[0], predict_s=predict_s,
                predict_images_per_s=test_x.shape[0] / predict_s, test_accuracy=accuracy,
                max_rss_kib=max_rss_kib())


def workload_c(args):
    steps = C["smoke_steps"] if args.smoke else (args.steps or C["default_steps"])
    steps = max(steps, C["blocks"])
    per_block = steps // C["blocks"]
    limit = (C["blocks"] + 1) * per_block * C["batch"]  # as C::load: the warm-up and the timed batches
    train_x, train_y, _, _ = load_fashion_mnist(args.data, limit)
    images = train_x.reshape(-1, 1, C["height"], C["width"]).contiguous()
    torch.manual_seed(42)

    def block(inputs, filters):
        return [*conv_block(inputs, filters, C["kernel"], 0.01), nn.MaxPool2d(C["pool"])]

    side = C["height"] // C["pool"] // C["pool"]
    model = glorot(nn.Sequential(*block(1, C["filters1"]), *block(C["filters1"], C["filters2"]), nn.Flatten(),
                                 nn.Linear(side * side * C["filters2"], C["classes"])))
    optimizer = torch.optim.Adam(model.parameters(), lr=C["lr"], eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    batches = images.shape[0] // C["batch"]
    counter = [0]

    def train_step():
        begin = (counter[0] % batches) * C["batch"]
        counter[0] += 1
        xb, yb = images[begin:begin + C["batch"]], train_y[begin:begin + C["batch"]]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        return loss

    first_loss = train_step().item()
    for _ in range(per_block - 1):
        train_step()
    losses = []
    train_ms = median_us_per_call(C["blocks"], per_block, lambda: losses.append(train_step())) / 1e3
    last_loss = losses[-1].item()

    model.eval()
    x = images[:C["batch"]]
    checksum = []
    with torch.inference_mode():
        infer_ms = median_us_per_call(C["blocks"], per_block,
                                      lambda: checksum.append(torch.softmax(model(x), dim=1)[0, 0])) / 1e3
    return dict(workload="C", impl="pytorch", threads=args.threads, steps=C["blocks"] * per_block,
                train_ms=train_ms, infer_ms=infer_ms, first_loss=first_loss, last_loss=last_loss,
                checksum=float(sum(c.item() for c in checksum)), max_rss_kib=max_rss_kib())


def workload_d(args):
    samples = D["smoke_samples"] if args.smoke else (args.samples or D["default_samples"])
    epochs = D["smoke_epochs"] if args.smoke else D["epochs"]
    train_x, train_y, test_x, test_y = load_fashion_mnist(args.data, samples)
    images = train_x.reshape(-1, 1, D["height"], D["width"]).contiguous()
    test_images = test_x.reshape(-1, 1, D["height"], D["width"]).contiguous()
    torch.manual_seed(42)
    f1, f2, f3 = D["filters"]
    k, m, p = D["kernel"], D["bn_momentum"], D["pool"]
    base = glorot(nn.Sequential(*conv_block(1, f1, k, m), nn.MaxPool2d(p), *conv_block(f1, f2, k, m), nn.MaxPool2d(p),
                                *conv_block(f2, f3, k, m), nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    head = glorot(nn.Sequential(nn.Linear(f3, D["hidden"]), nn.ReLU(), nn.Dropout(D["dropout"]),
                                nn.Linear(D["hidden"], D["classes"])))
    model = nn.Sequential(base, head)
    generator = torch.Generator().manual_seed(1)

    # "Pretrained briefly": one epoch of the whole model on the first images, untimed (as d_minidl).
    model.train()
    pretrain = D["pretrain_samples"]
    train_epoch(model, torch.optim.Adam(model.parameters(), lr=D["lr"], eps=1e-7), images[:pretrain],
                train_y[:pretrain], D["batch"], generator)

    # Frozen base: inference mode (BatchNorm's running statistics), no gradients, recomputed on every batch.
    base.eval()
    for parameter in base.parameters():
        parameter.requires_grad_(False)

    def forward(xb):
        with torch.no_grad():
            features = base(xb)
        return head(features)

    optimizer = torch.optim.Adam(head.parameters(), lr=D["lr"], eps=1e-7)
    epoch_s, last_loss = [], 0.0
    fit_start = time.perf_counter()
    for _ in range(epochs):
        head.train()
        start = time.perf_counter()
        last_loss = train_epoch(forward, optimizer, images, train_y, D["batch"], generator)
        epoch_s.append(time.perf_counter() - start)
    fit_s = time.perf_counter() - fit_start

    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.inference_mode():
        for b in range(0, test_images.shape[0], D["batch"]):
            logits = model(test_images[b:b + D["batch"]])
            yb = test_y[b:b + D["batch"]]
            loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(dim=1) == yb).sum().item()
    n_test = test_images.shape[0]
    return dict(workload="D", impl="pytorch", threads=args.threads, train_samples=images.shape[0], epochs=epochs,
                epoch_s=epoch_s, first_epoch_s=epoch_s[0],
                later_epoch_median_s=statistics.median(epoch_s[1:]) if len(epoch_s) > 1 else 0.0,
                fit_s=fit_s, last_loss=last_loss, test_samples=n_test, test_loss=loss_sum / n_test,
                test_accuracy=correct / n_test, max_rss_kib=max_rss_kib())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["a", "b", "c", "d"], required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=0)
    parser.add_argument("--samples", type=int, default=0, help="workload D: training images")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = dict(a=workload_a, b=workload_b, c=workload_c, d=workload_d)[args.workload](args)
    result["torch_version"] = torch.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
