#!/usr/bin/env bash
# GPU check of the runner: trainer=gpu and trainer=ddp (one device) on the default config and on
# a larger data set (200,000 rows × 8 features, batch 10,000, 5 epochs), one line of metrics each.
#
#   bash scripts/gpu_check.sh              # needs a CUDA build of torch with bnnlv installed
#   PYTHON=.venv/bin/python bash scripts/gpu_check.sh
#
# Each run writes its folder under $OUT (default outputs/gpu_check); a failed run is reported
# with its exit code and the last lines of its stderr, and the script goes on to the next one.
# Exit status: the number of failed runs.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-outputs/gpu_check}
ROWS=${ROWS:-200000}
mkdir -p "$OUT"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'available', torch.cuda.is_available(), 'devices', torch.cuda.device_count())"

# The larger data set: y = sin(x·w) + 0.1·|x₁|·ε, a CSV read like a user's own file.
LARGE="$OUT/large.csv"
if [ ! -f "$LARGE" ]; then
    "$PYTHON" - "$LARGE" "$ROWS" <<'EOF'
import sys
import numpy as np
import pandas as pd
path, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
x = rng.normal(size=(rows, 8))
y = np.sin(x @ rng.normal(size=8) / 2) + 0.1 * np.abs(x[:, 0]) * rng.normal(size=rows)
frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)]).assign(y=y)
frame.to_csv(path, index=False, float_format="%.6g")
EOF
fi
LARGE_ARGS=(data=csv "data.path=$LARGE" "data.targets=[y]" data.batch_size=10000
            trainer.max_epochs=5 trainer.check_val_every_n_epoch=5 plots=false)

failed=0
run() {
    local name=$1
    shift
    local start rc seconds
    start=$(date +%s%N)
    "$PYTHON" -m bnnlv.runs.cli train "$@" progress_bar=false "hydra.run.dir=$OUT/$name" \
        >"$OUT/$name.out" 2>"$OUT/$name.err"
    rc=$?
    seconds=$(( ($(date +%s%N) - start) / 1000000 ))e-3
    if [ $rc -ne 0 ]; then
        failed=$((failed + 1))
        echo "$name: FAILED (exit $rc) after $seconds s"
        tail -n 5 "$OUT/$name.err"
        return
    fi
    "$PYTHON" - "$OUT/$name/metrics.json" "$name" "$seconds" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
pts = m["epochs"] * m["n_train"] / m["fit_seconds"]
val = "-" if m.get("val_nll") is None else f"{m['val_nll']:.4f}"
print(f"{sys.argv[2]:<12} command {float(sys.argv[3]):6.1f} s  fit {m['fit_seconds']:6.1f} s  "
      f"{pts:12,.0f} points/s  epochs {m['epochs']}  test NLL {m['test_nll']:.4f}  "
      f"val NLL {val}  RMSE {m['test_rmse']:.4f}  R² {m['test_r2']:.4f}")
EOF
}

run default_gpu trainer=gpu trainer.devices=1
run default_ddp trainer=ddp trainer.devices=1
run large_gpu trainer=gpu trainer.devices=1 "${LARGE_ARGS[@]}"
run large_ddp trainer=ddp trainer.devices=1 "${LARGE_ARGS[@]}"
exit $failed
