"""The sweep's board in TensorBoard, written with the report: its figures as images, and Fig. 6 as custom scalars
(one chart per family with the training and test error of every run)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from resnet_repro.files import WriteFailed, read_json, remove_file, summary_writer, write_json

BOARD = "tb"  # the sweep board's folder inside the report folder
BOARD_FILES = "board.json"  # the event files the report wrote there: the only ones a later report removes


def fig6_tag(dataset: str, residual: bool, label: str, seed: int | None, split: str) -> str:
    return f"fig6-{dataset}/{'residual' if residual else 'plain'}/{label}/seed={seed}/{split}"


def write_board(
    out: Path, figures: list[Path], curves: dict[str, list[tuple[int, float]]], datasets: list[str]
) -> Path:
    """Write the sweep board into `out`/tb: `figures` (PNG files) as images, `curves` ({fig6_tag: points}) as
    scalars, and a custom-scalars layout with one chart per dataset and family. Returns the board's folder."""
    board = out / BOARD
    written = read_json(out / BOARD_FILES)
    mine = {name for name in written if isinstance(name, str)} if isinstance(written, list) else set()
    try:
        before = {path.name for path in board.iterdir()} if board.is_dir() and not board.is_symlink() else set()
    except OSError as err:  # a tb/ that cannot be read
        raise WriteFailed(board, err) from err
    with summary_writer(board, out) as writer:  # made and held here: each write from the folder, never via a link
        for figure in figures:
            with Image.open(figure) as image:
                writer.add_image(f"report/{figure.stem}", pil_to_tensor(image.convert("RGB")), 0)
        for tag, points in curves.items():
            for step, value in points:
                writer.add_scalar(tag, value, step)
        writer.add_custom_scalars(  # the custom-scalars plugin reads each chart's tags as regular expressions
            {
                f"Fig. 6 ({dataset}): training and test error (%)": {
                    family: ["Multiline", [rf"^fig6-{dataset}/{family}/"]] for family in ("plain", "residual")
                }
                for dataset in datasets
            }
        )
    for name in before & mine:  # the previous board, replaced; event files this report did not write are kept
        if name.startswith("events.out.tfevents.") and (board / name).is_file() and not (board / name).is_symlink():
            remove_file(board / name, out)
    write_json(out / BOARD_FILES, sorted({path.name for path in board.iterdir()} - before), root=out)
    return board
