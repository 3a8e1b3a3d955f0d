#!/usr/bin/env bash
# The biography bot, end to end on the embedded local AWS (no AWS account, no network):
# train a tiny Flan-T5-style model on the shipped biography dataset, evaluate it, package it as a
# SageMaker model.tar.gz, upload it to (local) S3, create a SageMaker endpoint, and ask it questions.
set -euo pipefail
cd "$(dirname "$0")/.."
QA=".venv/bin/qa-console"
PY=".venv/bin/python"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "train the tiny model on the biography dataset"
$QA train --base-model tiny --output artifacts/model

step "evaluate it on the paraphrased test questions"
$QA eval artifacts/model --split test

step "package it as a SageMaker model.tar.gz and check it"
$QA package artifacts/model -o artifacts/model.tar.gz
$QA package --check artifacts/model.tar.gz

step "start the embedded local AWS"
$QA local up

step "upload the model to S3"
MODEL_URL="$($QA upload artifacts/model.tar.gz)"   # the s3:// URL alone on stdout
echo "$MODEL_URL"

step "create the SageMaker endpoint biography-bot"
$PY scripts/create_endpoint.py "$MODEL_URL" biography-bot

step "ask the bot (through the SageMaker runtime)"
QUESTION="$($PY -c 'import json; print(json.loads(open("src/qa_console/data/biography/train.jsonl").readline())["question"])')"
echo "Q: $QUESTION"
printf 'A: '; $QA ask --backend bio-sagemaker "$QUESTION"

step "ask the same question of the local model"
printf 'A: '; $QA ask --backend bio-local "$QUESTION"

step "the local AWS keeps running; see it with 'qa-console local status', stop it with 'qa-console local down'"
$QA local status
