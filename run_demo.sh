#!/usr/bin/env bash
# Quick start: set up .venv, then run the main job on the bundled mini-MIAS sample:
# prepare → augment → train a small SR network (×2, pixel loss) and a tiny DCGAN → evaluate → infer.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh requirements.txt
export TF_CPP_MIN_LOG_LEVEL=2
./1.prepare.sh dataset/MIAS-sample.config
.venv/bin/python -m mammogan augment generator/MIAS-sample.config
projects/SRGAN/MIAS-x2/1.train.sh
projects/SRGAN/MIAS-x2/2.evaluate.sh
projects/SRGAN/MIAS-x2/3.infer.sh
projects/GAN/DCGAN-MIAS/1.train.sh
projects/GAN/DCGAN-MIAS/2.evaluate.sh
projects/GAN/DCGAN-MIAS/3.infer.sh
.venv/bin/python scripts/demo_summary.py
cat <<MSG

Done. Where to look:
  prepared data     dataset/MIAS-sample/{train,valid,test}/ (images, masks, lr_x2, lr_x4), patches/, manifest.json
  augmented data    dataset/MIAS-sample-augmented/{train,valid,test}/ (augmentation.csv lists every output)
  SRGAN tiles       projects/SRGAN/MIAS-x2/output/epoch_tiles/ and epoch_tiles.gif
  SRGAN metrics     projects/SRGAN/MIAS-x2/output/train_metrics.csv, output/evaluation/evaluation.csv
  SR outputs        projects/SRGAN/MIAS-x2/output/inference/
  DCGAN tiles       projects/GAN/DCGAN-MIAS/output/epoch_tiles/ and epoch_tiles.gif
  DCGAN evaluation  projects/GAN/DCGAN-MIAS/output/evaluation/evaluation.csv (KID etc. vs step-0 and noise)
  synthetic images  projects/GAN/DCGAN-MIAS/output/synthetic/images/ (manifest.csv)
MSG
