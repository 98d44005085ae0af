#!/usr/bin/env bash
# Executes every notebook top to bottom against a server on a fresh demo
# warehouse, and fails on the first error.
#
#   notebooks/run.sh            # all notebooks
#   notebooks/run.sh 02         # those whose name starts with 02
#
# Installs notebooks/requirements.txt into a virtual environment under
# target/ (reused by later runs), builds the binary if needed, generates the
# province demo into a temporary directory, starts `osservatorio serve` on
# free loopback ports and stops it at the end. Nothing is written to the
# notebooks themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
only=${1:-}

# shellcheck source=../benches/lib.sh
source "$repo/benches/lib.sh"
pinned_python "$repo"

cargo build --locked --quiet --features cluster --bin osservatorio
bin=$target/debug/osservatorio

work=$(mktemp -d)
server_pid=
cleanup() {
    stop_serve
    rm -rf "$work"
}
trap cleanup EXIT

export OSSERVATORIO_DATA_DIR=$work/data
export OSSERVATORIO_QUERIES_DIR=$repo/queries
# The working directory is the temporary one, so that no local
# osservatorio.toml (with its tokens) is picked up.
cd "$work"
"$bin" generate --scale province >"$work/generate.log" 2>&1
start_serve "$work/serve.log"
export OSSERVATORIO_URL=$server_url OSSERVATORIO_FLIGHT_URI=$flight_uri OSSERVATORIO_TOKEN=$server_token

status=0
for notebook in "$repo"/notebooks/${only}*.ipynb; do
    name=$(basename "$notebook")
    started=$(date +%s)
    if "$py" - "$notebook" "$work" <<'PY'
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path, workdir = sys.argv[1], sys.argv[2]
notebook = nbformat.read(path, as_version=4)
client = NotebookClient(
    notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": workdir}}
)
try:
    client.execute()
except CellExecutionError as error:
    print(error, file=sys.stderr)
    sys.exit(1)
PY
    then
        echo "notebook $name: ok ($(( $(date +%s) - started )) s)"
    else
        echo "notebook $name: FAILED" >&2
        status=1
    fi
done
if [ "$status" -ne 0 ]; then
    echo "--- server log ---" >&2
    tail -n 40 "$work/serve.log" >&2
fi
exit $status
