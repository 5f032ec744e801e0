"""A run's HParams in TensorBoard: the recipe keys that tell the paper's runs apart, and its final errors."""

from __future__ import annotations

from typing import Any

from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from resnet_repro.models.registry import architecture

# HParams columns: the recipe keys that tell the paper's runs apart (everything else is one value per sweep)
HPARAM_KEYS = (
    "data.name",
    "data.val_size",
    "model.depth",
    "model.residual",
    "model.shortcut",
    "trainer.precision",
    "data.batch_size",
    "optim.lr",
    "optim.weight_decay",
    "optim.milestones",
    "trainer.max_steps",
    "optim.warmup_lr",
)


def run_hparams(recipe: dict[str, Any], recipe_id: str, seed: int) -> dict[str, Any]:
    """The HParams of a run: HPARAM_KEYS from its recipe (lists as text; a key the recipe does not hold, such as
    the warm-up of a net without one, is left out), its family, its recipe_id (a group of seeds) and its seed."""
    arch = architecture(str(recipe.get("model._target_")))
    values: dict[str, Any] = {"family": arch.family if arch else "unknown"}
    for key in HPARAM_KEYS:
        value = recipe.get(key)
        if value is not None:
            values[key] = str(value) if isinstance(value, list) else value
    return {**values, "recipe_id": recipe_id, "seed": seed}


def run_metrics(metrics: dict[str, float | None]) -> dict[str, float]:
    """The final errors a run measured, as HParams metrics (one it did not measure is no column of NaNs)."""
    keys = ("test_err", "val_err", "train_err", "test_err5")
    return {f"hparams/{k}": float(metrics[k]) for k in keys if isinstance(metrics.get(k), int | float)}


def log_hparams(logger: TensorBoardLogger, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
    """Write the run's HParams with TensorBoard's own summaries, where booleans stay booleans (torch's hparams()
    tests int before bool, so model.residual became 0.0/1.0), and keep them in the logger's hparams.yaml."""
    logger.hparams.update(hparams)
    logger.log_metrics(metrics, step=0)
    infos, start = [], plugin_data_pb2.SessionStartInfo()
    for key, value in hparams.items():
        if isinstance(value, bool):  # before int: a bool is an int in Python
            kind, start.hparams[key].bool_value = "DATA_TYPE_BOOL", value
        elif isinstance(value, int | float):
            kind, start.hparams[key].number_value = "DATA_TYPE_FLOAT64", value
        else:
            kind, start.hparams[key].string_value = "DATA_TYPE_STRING", str(value)
        infos.append(api_pb2.HParamInfo(name=key, type=api_pb2.DataType.Value(kind)))
    columns = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metrics]
    writer = logger.experiment._get_file_writer()
    for tag, data in (
        (
            metadata.EXPERIMENT_TAG,
            plugin_data_pb2.HParamsPluginData(experiment=api_pb2.Experiment(hparam_infos=infos, metric_infos=columns)),
        ),
        (metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
        (
            metadata.SESSION_END_INFO_TAG,
            plugin_data_pb2.HParamsPluginData(
                session_end_info=plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
            ),
        ),
    ):
        data.version = metadata.PLUGIN_DATA_VERSION
        plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString())
        writer.add_summary(Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))]))
