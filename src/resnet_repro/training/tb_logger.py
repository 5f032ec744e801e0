"""A run's TensorBoard logger: Lightning's TensorBoardLogger, whose files below the run directory are written as
every other file of a run is (files.py): its event files through files.summary_writer (the folder held open, each
write opened from it without following a link), hparams.yaml through the one writer."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.core.saving import save_hparams_to_yaml
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.tensorboard import SummaryWriter

from resnet_repro.errors import escaped
from resnet_repro.files import WriteFailed, atomic_write, summary_writer

log = logging.getLogger(__name__)


class RunTensorBoardLogger(TensorBoardLogger):
    """TensorBoardLogger writing below `save_dir` (the run directory) only, never through a link there."""

    refused = False  # whether hparams.yaml was refused (and said so)

    @property
    def folder(self) -> Path:
        """The event files' folder: Lightning's log_dir, without its expansion of `$VAR` and `~` in the run's path."""
        version = self.version if isinstance(self.version, str) else f"version_{self.version}"
        return Path(self.save_dir, self.name, version)

    @property
    @rank_zero_experiment
    def experiment(self) -> SummaryWriter:
        """The SummaryWriter, made on first use with its folder opened and held (files.summary_writer)."""
        if self._experiment is None:
            self._experiment = summary_writer(self.folder, self.save_dir, **self._kwargs)
        return self._experiment

    @rank_zero_only
    def save(self) -> None:
        """Flush the events; write hparams.yaml when it is missing (as Lightning does), through atomic_write. A
        refused write (a link in its place) is a warning: the run's results are recorded all the same."""
        self.experiment.flush()
        path = self.folder / self.NAME_HPARAMS_FILE
        if path.is_file() and not path.is_symlink():
            return
        try:
            with tempfile.TemporaryDirectory() as scratch:  # Lightning's own YAML of the hparams, then our writer
                save_hparams_to_yaml(Path(scratch) / path.name, self.hparams)
                text = (Path(scratch) / path.name).read_bytes()
            atomic_write(path, lambda file: file.write(text), root=self.save_dir)
        except (OSError, WriteFailed) as err:
            if not self.refused:  # Lightning saves after every logging step: said once
                log.warning("%s", escaped(f"{path} was not written: {err}"))
            self.refused = True
