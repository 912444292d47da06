"""Test metrics in ORIGINAL units: the mixture NLL (ours) plus accuracy and calibration
(uncertainty-toolbox, on the predictive mean and total std; its slow adversarial group
calibration is not used)."""

from __future__ import annotations

import numpy as np
import uncertainty_toolbox as uct


def regression_metrics(
    y: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    log_density: np.ndarray,
    log_density_per_output: np.ndarray,
    y_scale: np.ndarray,
    target_names: list[str],
) -> dict[str, float]:
    """Flat metrics dict for one test set.

    Args, all in ORIGINAL units except where noted:
        y, mean, std: [B, D] targets, predictive means and total stds.
        log_density: [B] mixture log p(y|x) in STANDARDISED units (joint over outputs).
        log_density_per_output: [B, D] the per-output marginals, standardised units.
        y_scale: [D] the target standardisation std s_y; log p_orig = log p_std − Σ_d log s_y,d.

    Accuracy and calibration figures average over outputs (uncertainty-toolbox works on 1-D
    arrays); per-output NLLs are reported as ``test_nll_<target>`` when D > 1.
    """
    log_scale = np.log(y_scale)
    metrics: dict[str, float] = {
        "test_nll": float(-(log_density - log_scale.sum()).mean()),
        "test_nll_standardised": float(-log_density.mean()),
    }
    per_output = []
    for d, name in enumerate(target_names):
        acc = uct.metrics_accuracy.prediction_error_metrics(mean[:, d], y[:, d])
        per_output.append(
            {
                "rmse": acc["rmse"],
                "mae": acc["mae"],
                "r2": acc["r2"],
                "crps": uct.metrics_scoring_rule.crps_gaussian(mean[:, d], std[:, d], y[:, d]),
                "miscal_area": uct.metrics_calibration.miscalibration_area(
                    mean[:, d], std[:, d], y[:, d], vectorized=True
                ),
            }
        )
        if len(target_names) > 1:
            nll_d = -(log_density_per_output[:, d] - log_scale[d]).mean()
            metrics[f"test_nll_{name}"] = float(nll_d)
            metrics[f"test_rmse_{name}"] = float(acc["rmse"])
    for key in per_output[0]:
        metrics[f"test_{key}"] = float(np.mean([p[key] for p in per_output]))
    return metrics
