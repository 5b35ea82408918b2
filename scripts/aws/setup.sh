#!/usr/bin/env bash
# Installs what the AWS service tests run against, into the ignored .cache/aws: a Python
# venv with moto's server mode (SQS, SNS, DynamoDB, EventBridge, ... on one port), boto3
# to check effects, and the AWS CLI (tests/api_kafka.rs drives stepstream's own API with it). Idempotent: when the pinned versions are there it only prints the path.
# Prints one line for `export`: AWS_PYTHON=<venv python> (moto_server is beside it).
set -euo pipefail
cd "$(dirname "$0")/../.."

MOTO_VERSION="5.2.5"
# Part of the version stamp, so a venv made before the CLI was added gets it.
STAMP="$MOTO_VERSION awscli"
dir="$PWD/.cache/aws"
venv="$dir/venv"

if [ ! -x "$venv/bin/moto_server" ] || [ "$(cat "$dir/moto.version" 2>/dev/null)" != "$STAMP" ]; then
  echo "installing moto[server] $MOTO_VERSION and boto3 into $venv" >&2
  mkdir -p "$dir"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" boto3 awscli >&2
  echo "$STAMP" > "$dir/moto.version"
fi

echo "AWS_PYTHON=$venv/bin/python3"
