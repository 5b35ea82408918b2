#!/usr/bin/env bash
# Installs what the AWS service tests run against, into the ignored .cache/aws: a Python
# venv with moto's server mode (SQS, SNS, DynamoDB, EventBridge, ... on one port) and boto3
# to check effects. Idempotent: when the pinned versions are there it only prints the path.
# Prints one line for `export`: AWS_PYTHON=<venv python> (moto_server is beside it).
set -euo pipefail
cd "$(dirname "$0")/../.."

MOTO_VERSION="5.2.5"
dir="$PWD/.cache/aws"
venv="$dir/venv"

if [ ! -x "$venv/bin/moto_server" ] || [ "$(cat "$dir/moto.version" 2>/dev/null)" != "$MOTO_VERSION" ]; then
  echo "installing moto[server] $MOTO_VERSION and boto3 into $venv" >&2
  mkdir -p "$dir"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" boto3 >&2
  echo "$MOTO_VERSION" > "$dir/moto.version"
fi

echo "AWS_PYTHON=$venv/bin/python3"
