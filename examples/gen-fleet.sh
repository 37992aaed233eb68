#!/usr/bin/env bash
# Write a fleet of N cards as YAML (default 1000) to stdout:
#   examples/gen-fleet.sh 10000 > fleet.yaml && CARDFORM_SANDBOX="--balance 100000" cardform plan --sandbox -f fleet.yaml
# (the built-in sandbox starts with 10000 USDT; CARDFORM_SANDBOX sizes it, see the README)
set -euo pipefail
n=${1:-1000}
product=${2:-VISA_USD_STD}
echo "version: 1"
echo "defaults:"
echo "  product_code: $product"
echo "cards:"
awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "  - {key: fleet-%06d, external_user_id: fleet-user-%06d, labels: {batch: fleet}}\n", i, i }'
