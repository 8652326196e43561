#!/usr/bin/python3
"""Generates the PyTorch state_dict fixtures of tests/test_pytorch_bridge.cpp:

    tests/data/pytorch_mlp_f64.safetensors, pytorch_mlp_f32.safetensors
        state_dict of  0 Linear(8, 16), 1 BatchNorm1d(16), 2 ReLU, 3 Dropout(0.2), 4 Linear(16, 3)
    tests/data/pytorch_cnn_f64.safetensors, pytorch_cnn_f32.safetensors
        state_dict of  0 Conv2d(2, 4, 3), 1 BatchNorm2d(4), 2 ReLU, 3 MaxPool2d(2), 4 Flatten,
                       5 BatchNorm1d(16), 6 Linear(16, 3)          (input 2 x 6 x 6)
    tests/data/pytorch_reference.safetensors
        inputs and eval-mode outputs (F64):
        mlp_x (N, 8); cnn_x (N, 6*6*2), channels last (h, w, c) as minidl's batches;
        <model>_y64: outputs of the F64 state_dict; <model>_y32: outputs of the F32
        state_dict's (rounded) values, computed in float64.
        The inputs are float32 values, so the float and double tests see the same data.

Each model is trained for a few SGD steps in train mode on seeded random data,
so that the running statistics are far from their initial 0 and 1, then put in
eval mode. The state_dicts are written as safetensors' save_file writes
model.state_dict(), num_batches_tracked included (I64). The safetensors Python
package is not needed: the format is written here with struct and json.

Run from the repository root with Debian's PyTorch:
    /usr/bin/python3 scripts/make_pytorch_fixture.py
The test suite only reads the committed files; it never runs Python. Training
runs in float64 on one thread from fixed seeds, so a rerun reproduces the files
(up to the PyTorch version recorded in their metadata).
"""

import copy
import json
import struct

import torch
from torch import nn

DATA = "tests/data/"
DTYPES = {torch.float32: ("F32", "f"), torch.float64: ("F64", "d"), torch.int64: ("I64", "q")}


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, tensor); values little-endian, row-major."""
    header, data = {}, b""
    for name, t in tensors:
        dtype, code = DTYPES[t.dtype]
        values = t.detach().contiguous().reshape(-1).tolist()
        raw = struct.pack("<%d%s" % (len(values), code), *values)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def train(model, make_input, steps=20, batch=16):
    """A few SGD steps on random regression data, in train mode."""
    generator = torch.Generator().manual_seed(1)
    x = make_input(batch * 4, generator)
    y = torch.randn(batch * 4, 3, generator=generator, dtype=torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for step in range(steps):
        rows = slice((step % 4) * batch, (step % 4 + 1) * batch)
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x[rows]), y[rows])
        loss.backward()
        optimizer.step()
    model.eval()


def float32_copy(model):
    """The model with every floating tensor rounded to float32 and back (still float64)."""
    state = {k: (v.float().double() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    rounded = copy.deepcopy(model)
    rounded.load_state_dict(state)
    return rounded


def save_state_dicts(name, model):
    meta = {"format": "pt", "generator": "scripts/make_pytorch_fixture.py", "torch": torch.__version__}
    state = model.state_dict()
    write_safetensors(DATA + "pytorch_%s_f64.safetensors" % name, list(state.items()), meta)
    state32 = [(k, v.float() if v.is_floating_point() else v) for k, v in state.items()]
    write_safetensors(DATA + "pytorch_%s_f32.safetensors" % name, state32, meta)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    reference = []
    n = 10

    # A multilayer perceptron with BatchNorm1d and Dropout.
    mlp = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3)).double()
    train(mlp, lambda rows, g: 2 * torch.randn(rows, 8, generator=g, dtype=torch.float64) + 0.5)
    x = (2 * torch.randn(n, 8) + 0.5).double()  # float32 values
    with torch.no_grad():
        reference += [("mlp_x", x), ("mlp_y64", mlp(x)), ("mlp_y32", float32_copy(mlp)(x))]
    save_state_dicts("mlp", mlp)

    # A small convolutional network: BatchNorm2d over channels, then a
    # BatchNorm1d and a Linear on channels-first flattened features.
    cnn = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.BatchNorm1d(16), nn.Linear(16, 3)).double()
    train(cnn, lambda rows, g: torch.randn(rows, 2, 6, 6, generator=g, dtype=torch.float64) + 0.3)
    x = (torch.randn(n, 2, 6, 6) + 0.3).double()
    with torch.no_grad():
        channels_last = x.permute(0, 2, 3, 1).reshape(n, -1)
        reference += [("cnn_x", channels_last), ("cnn_y64", cnn(x)), ("cnn_y32", float32_copy(cnn)(x))]
    save_state_dicts("cnn", cnn)

    write_safetensors(DATA + "pytorch_reference.safetensors", reference,
                      {"generator": "scripts/make_pytorch_fixture.py", "torch": torch.__version__})


if __name__ == "__main__":
    main()
