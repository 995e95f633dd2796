#!/usr/bin/env bash
# Train productgan on a Cloud TPU VM pod slice (multi-host). Every worker runs the same command;
# jax.distributed discovers the other workers from the TPU metadata (gan.parallel).
#
#   PROJECT=my-proj ZONE=us-central2-b TPU=productgan-v4-16 ACCELERATOR=v4-16 \
#   BUCKET=gs://my-bucket REPO=https://github.com/you/productgan.git \
#   bash experiments/tpu_vm.sh create|install|train|tensorboard|delete
#
# The workdir is a GCS path, so every worker reads/writes the same checkpoints; only process 0
# writes summaries and samples. Preemption (SIGTERM) makes every worker checkpoint and exit 0:
# rerun `train` to resume.
set -euo pipefail
: "${PROJECT:?set PROJECT}" "${ZONE:?set ZONE}" "${TPU:?set TPU (the VM name)}"
ACCELERATOR=${ACCELERATOR:-v4-16}
RUNTIME=${RUNTIME:-tpu-ubuntu2204-base}
BUCKET=${BUCKET:-}
REPO=${REPO:-https://github.com/productgan/productgan.git}
CONFIG=${CONFIG:-configs/dcgan_products.py}
WORKDIR=${WORKDIR:-${BUCKET:+$BUCKET/workdirs/$(basename "$CONFIG" .py)}}
DATA_DIR=${DATA_DIR:-${BUCKET:+$BUCKET/tensorflow_datasets}}

ssh_all() {
  gcloud compute tpus tpu-vm ssh "$TPU" --project="$PROJECT" --zone="$ZONE" --worker=all \
    --command="$1"
}

case "${1:-}" in
  create)
    gcloud compute tpus tpu-vm create "$TPU" --project="$PROJECT" --zone="$ZONE" \
      --accelerator-type="$ACCELERATOR" --version="$RUNTIME" ${SPOT:+--spot}
    ;;
  install)
    ssh_all "set -e; [ -d productgan ] || git clone $REPO productgan; cd productgan && git pull;
             python3 -m venv ~/venv && . ~/venv/bin/activate && pip install -U pip &&
             pip install -e . 'jax[tpu]' -f https://storage.googleapis.com/jax-releases/libtpu_releases.html"
    ;;
  train)
    : "${WORKDIR:?set BUCKET or WORKDIR (a gs:// path all workers share)}"
    ssh_all "cd productgan && . ~/venv/bin/activate &&
             TFDS_DATA_DIR=$DATA_DIR nohup python -m gan.main --config=$CONFIG --workdir=$WORKDIR \
               ${EXTRA_FLAGS:-} > ~/train.log 2>&1 &"
    echo "Training on all workers; logs: gcloud ... ssh --worker=0 --command='tail -f ~/train.log'"
    ;;
  tensorboard)
    : "${WORKDIR:?set BUCKET or WORKDIR}"
    tensorboard --logdir "$WORKDIR"
    ;;
  delete)
    gcloud compute tpus tpu-vm delete "$TPU" --project="$PROJECT" --zone="$ZONE" --quiet
    ;;
  *)
    echo "usage: $0 create|install|train|tensorboard|delete" >&2
    exit 2
    ;;
esac
