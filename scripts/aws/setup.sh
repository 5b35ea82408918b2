#!/usr/bin/env bash
# Installs what the AWS service tests run against, into the ignored .cache/aws: a Python
# venv with moto's server mode (SQS, SNS, DynamoDB, EventBridge, ... on one port), boto3
# to check effects, and the AWS CLI (tests/api_kafka.rs drives stepstream's own API with it). Idempotent: when the pinned versions are there it only prints the path.
# Prints one line for `export`: AWS_PYTHON=<venv python> (moto_server is beside it).
set -euo pipefail
cd "$(dirname "$0")/../.."

MOTO_VERSION="5.2.5"
# botocore's service models change with each release (botocore 1.44.18 moved Athena from
# JSON 1.1 to REST-JSON), and tests/aws_tasks.rs compares stepstream's AWS SDK table with
# them, so the SDK versions are pinned with moto's, to the ones the suite was checked with.
BOTO_VERSION="1.44.8"
AWSCLI_VERSION="1.46.3"
STAMP="$MOTO_VERSION boto $BOTO_VERSION awscli $AWSCLI_VERSION"
dir="$PWD/.cache/aws"
venv="$dir/venv"

if [ ! -x "$venv/bin/moto_server" ] || [ "$(cat "$dir/moto.version" 2>/dev/null)" != "$STAMP" ]; then
  echo "installing moto[server] $MOTO_VERSION and boto3 into $venv" >&2
  mkdir -p "$dir"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
    "boto3==$BOTO_VERSION" "botocore==$BOTO_VERSION" "awscli==$AWSCLI_VERSION" >&2
  echo "$STAMP" > "$dir/moto.version"
fi

echo "AWS_PYTHON=$venv/bin/python3"
