#!/usr/bin/env bash
# The biography bot, end to end on the embedded local AWS (no AWS account, no network):
# train a tiny Flan-T5-style model on the shipped biography dataset, evaluate it, package it as a
# SageMaker model.tar.gz, check IAM, deploy it to a SageMaker endpoint (uploading it to S3), expose it
# as an HTTP API (API Gateway + Lambda, with an API key), and ask it questions each way.
set -euo pipefail
cd "$(dirname "$0")/.."
QA=".venv/bin/qa-console"
PY=".venv/bin/python"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "train the tiny model on the biography dataset"
$QA train --base-model tiny --output artifacts/model

step "evaluate it: every split, incl. paraphrased test questions and unknown people to abstain on"
$QA eval artifacts/model --split all

step "package it as a SageMaker model.tar.gz and check it"
$QA package artifacts/model -o artifacts/model.tar.gz
$QA package --check artifacts/model.tar.gz

step "start the embedded local AWS"
$QA local up

step "create the SageMaker execution role (once) and check IAM"
ROLE="$($QA iam create-role qa-console-biography-bot --endpoint biography-bot)"
$QA config set execution_role "$ROLE"
$QA iam check --endpoint biography-bot > /dev/null && echo "IAM: every permission the deploy needs is allowed"

step "deploy it: upload to S3, serverless endpoint biography-bot, warm-up question"
$QA deploy artifacts/model.tar.gz --name biography-bot

step "ask the bot (through the SageMaker runtime)"
# A paraphrase from the test split: wording the model never saw in training.
QUESTION="$($PY -c 'import json; print(json.loads(open("src/qa_console/data/biography/test.jsonl").readline())["question"])')"
echo "Q: $QUESTION"
printf 'A: '; $QA ask --backend bio-sagemaker "$QUESTION"

step "expose it as an HTTP API: API Gateway + Lambda, an API key and a usage plan"
$QA expose biography-bot

step "ask the bot through the API (the key is read from where expose kept it)"
printf 'A: '; $QA ask --backend biography-bot-api "$QUESTION"

step "ask the same question of the local model"
printf 'A: '; $QA ask --backend bio-local "$QUESTION"

step "ask about someone the bot never heard of: it says so, and --json marks it known: false"
$QA ask --backend bio-local --json "Where was Peregrine Oakshott born?"

step "the local AWS keeps running: 'qa-console status', 'qa-console local status'; 'qa-console teardown biography-bot' removes the endpoint and API, 'qa-console local down' stops it all"
$QA local status
