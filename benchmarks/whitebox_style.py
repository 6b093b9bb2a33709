"""Does `xfix train whitebox --style DIR` move the look towards the style? A measurement, not a test.

    python benchmarks/whitebox_style.py make --data ../shared/corpus/train_photos --out runs/style_warm
    xfix train whitebox --data ../shared/corpus/train_photos --style runs/style_warm --init-from-weights ...
    python benchmarks/whitebox_style.py measure --data ../shared/corpus/train_photos \
        --weights models/whitebox.safetensors runs/style_out/whitebox.safetensors

`make` writes a style folder: training photos (never the validation split) given a fixed warm, high-contrast
look (`STYLE`, an xfix edit). `measure` runs each weights file on the validation photos and prints the colour
and tone statistics of its outputs beside those of the same photos given the style look: warmth (mean R - mean
B), contrast (standard deviation of luma), brightness (mean luma), all on sRGB values in [0, 1].
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from xfix.edit import Edit, Step

STYLE = Edit("srgb", (
    Step("white_balance", {"gains": [1.2, 1.0, 0.75]}),
    Step("contrast", {"amount": 0.45}),
    Step("saturation", {"amount": 1.2}),
))  # fmt: skip
LUMA = np.array([0.2126, 0.7152, 0.0722])


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None]


def _image(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).numpy()


def make(data: Path, out: Path, count: int, max_side: int) -> None:
    from PIL import Image

    from xfix.colour import to_float
    from xfix.data.dataset import list_photos, load_photo, split_photos

    train, _ = split_photos(list_photos(data))
    out.mkdir(parents=True, exist_ok=True)
    for path in train[:count]:
        styled = _image(STYLE.apply(_tensor(to_float(load_photo(path, max_side)))))
        Image.fromarray(np.round(styled * 255).astype(np.uint8)).save(out / f"{path.stem}.png")
    print(f"{min(count, len(train))} styled photos in {out}")  # noqa: T201


def stats(image: np.ndarray) -> dict[str, float]:
    luma = image @ LUMA
    return {"warmth": float(image[..., 0].mean() - image[..., 2].mean()), "contrast": float(luma.std()),
            "brightness": float(luma.mean())}


def measure(data: Path, weights: list[Path], limit: int, max_side: int) -> dict:
    from safetensors.torch import load_file

    from xfix.archs.whitebox import build
    from xfix.colour import to_float
    from xfix.data.dataset import list_photos, load_photo, split_photos
    from xfix.profile import load_profile

    _, val = split_photos(list_photos(data))
    photos = [to_float(load_photo(p, max_side)) for p in val[:limit]]
    rows = {"input": [stats(p) for p in photos],
            "style look": [stats(_image(STYLE.apply(_tensor(p)))) for p in photos]}
    settings = dict(load_profile("whitebox").settings)
    for path in weights:
        model = build(settings)
        model.load_state_dict(load_file(str(path)))
        model.eval()
        with torch.no_grad():
            rows[str(path)] = [stats(_image(model(_tensor(p)))) for p in photos]
    table = {name: {k: float(np.mean([r[k] for r in items])) for k in items[0]} for name, items in rows.items()}
    print(f"{'':48s} {'warmth':>8s} {'contrast':>9s} {'brightness':>11s}")  # noqa: T201
    for name, means in table.items():
        print(f"{name:48s} {means['warmth']:8.4f} {means['contrast']:9.4f} {means['brightness']:11.4f}")  # noqa: T201
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("--data", type=Path, required=True)
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--count", type=int, default=150)
    m.add_argument("--max-side", type=int, default=384)
    s = sub.add_parser("measure")
    s.add_argument("--data", type=Path, required=True)
    s.add_argument("--weights", type=Path, nargs="+", required=True)
    s.add_argument("--limit", type=int, default=30)
    s.add_argument("--max-side", type=int, default=384)
    s.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.command == "make":
        make(args.data, args.out, args.count, args.max_side)
    else:
        table = measure(args.data, args.weights, args.limit, args.max_side)
        if args.json:
            args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
