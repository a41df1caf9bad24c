#!/usr/bin/env bash
# The CUDA paths, end to end, in about five minutes on one GPU: training in bf16 and in fp16
# (GradScaler), evaluation with flip TTA at both resolutions, inference and ONNX export, DDP
# over nccl under torchrun, and the benchmark against the plain loop and smp. CPU CI cannot
# reach any of these; run this on a CUDA machine after changing the engine.
#
#   SEGKIT_PET_ROOT=/path/to/oxford-iiit-pet bash tools/cuda_check.sh [OUT_DIR]
#
# Each step prints its last lines; benchmark JSON goes to OUT_DIR (default work_dirs/cuda_check).
set -u
: "${SEGKIT_PET_ROOT:?set SEGKIT_PET_ROOT to an Oxford-IIIT Pet folder}"
PY=${PYTHON:-python3}
OUT=${1:-work_dirs/cuda_check}
W=$OUT/runs
NW=${NUM_WORKERS:-8}
C=configs/resnet34_unet_light_aug_cosine.yaml
DATA="DATA.ROOT $SEGKIT_PET_ROOT DATA.NUM_WORKERS $NW INPUT.SIZE 128"
export PYTHONUNBUFFERED=1
mkdir -p "$W"
step() { echo; echo "=== $* ($(date +%T))"; }

step environment
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(), 'bf16', torch.cuda.is_bf16_supported())" || exit 1

for dt in bfloat16 float16; do
  step "train 3 epochs, $dt autocast"
  timeout 300 $PY tools/train.py $C $DATA SOLVER.EPOCHS 3 SOLVER.AMP.DTYPE $dt OUTPUT_DIR $W/$dt 2>&1 | tail -4
  step "test $dt, flip TTA, network and original resolution"
  timeout 300 $PY tools/test.py $C $W/$dt/last.pth $DATA SOLVER.AMP.DTYPE $dt --tta flip --resolution both | tail -1 | cut -c1-400
done

step "infer a folder, export ONNX"
timeout 300 $PY tools/infer.py $C $W/bfloat16/last.pth "$SEGKIT_PET_ROOT/images" --out-dir $W/pred --no-progress 2>&1 | tail -2
timeout 300 $PY tools/export.py $C $W/bfloat16/last.pth --format onnx --dynamic --output $W/model.onnx INPUT.SIZE 128 2>&1 | tail -1

step "DDP over nccl, one process per GPU"
timeout 300 torchrun --standalone --nproc_per_node "$($PY -c 'import torch; print(torch.cuda.device_count())')" \
  tools/train.py $C $DATA SOLVER.EPOCHS 1 OUTPUT_DIR $W/ddp 2>&1 | tail -3

for s in 128 256; do
  step "benchmark at $s px against the plain loop and smp (smp skipped if not installed)"
  peer=$($PY -c "import segmentation_models_pytorch" 2>/dev/null && echo "--peer smp")
  timeout 400 $PY tools/benchmark.py $C DATA.ROOT $SEGKIT_PET_ROOT DATA.NUM_WORKERS $NW INPUT.SIZE $s \
    --baseline $peer --steps 30 --rounds 2 --json-out $OUT/benchmark_$s.json 2>&1 | grep -v '^{' | tail -14
done
step done
