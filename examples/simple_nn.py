"""The classic small network, written exactly as a PyTorch user writes it.

Linear(10, 5) -> ReLU -> Linear(5, 1), MSE loss, SGD: forward, ``loss.backward()``,
``optimizer.step()``. It fits random inputs to the targets of a random linear teacher
(plus noise) and prints the loss falling. Run from the repository root:

    python examples/simple_nn.py            # 200 steps
    python examples/simple_nn.py --fast     # 30 steps (CI)

The only change from the torch version is the imports (``tritongrad`` for ``torch``).
"""

from __future__ import annotations

import argparse

import tritongrad as tg
import tritongrad.nn as nn
import tritongrad.optim as optim


class SimpleNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 5)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(5, 1)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="30 steps (for CI)")
    args = parser.parse_args(argv)
    steps = 30 if args.fast else args.steps

    tg.manual_seed(args.seed)
    inputs = tg.randn(64, 10)
    teacher = tg.randn(10, 1)
    targets = inputs @ teacher + 0.1 * tg.randn(64, 1)

    model = SimpleNN()
    criterion = nn.MSELoss()
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    print(model)

    losses = []
    for step in range(steps):
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {losses[-1]:.4f}")
    print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")
    return {"losses": losses}


if __name__ == "__main__":
    main()
