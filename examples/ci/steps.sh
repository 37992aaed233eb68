#!/bin/sh
# The shell of the GitOps recipe (github-actions.yml calls it, step by step, so the two cannot
# drift apart): install a released cardform, plan a pull request, comment the plan, fail on a
# plan that failed, apply the reviewed plan on merge, back the state up. It needs only the
# declarations and the settings below, never cardform's source.
#
#   steps.sh install        download the release archive, verify its sha256, install the binary
#   steps.sh plan           plan the declarations: writes plan.md (always) and plan.json (when a
#                           plan was made); records the exit code; never fails itself
#   steps.sh comment PR     post plan.md on pull request PR (gh), whatever the plan's outcome
#   steps.sh verdict        fail (exit 1) when the plan failed: problems, or no plan at all
#   steps.sh apply          apply exactly the reviewed plan file
#   steps.sh backup         a consistent SQLite copy of the state, and today's audit as CSV
#
# Settings (environment):
#   CARDFORM_VERSION   the release to install (install), e.g. 0.9.0; pinned, never "latest"
#   CARDFORM_RELEASES  where releases are (install) [https://github.com/OWNER/cardform/releases/download]
#   CARDFORM_BIN_DIR   where to install the binary (install) [$HOME/.local/bin]
#   CARDFORM_FILES     the declarations, space-separated [cards/]; set it empty to use `files`
#                      from cardform.toml
#   CARDFORM_MAX_FEES  refuse a plan whose fees pass this amount (plan) [no limit]
#   CARDFORM_PLAN      the plan file [plan.json]; its markdown goes beside it as .md
#   CARDFORM_STATE, PGPASSWORD, CARDFORM_API_URL, CARDFORM_API_KEY, CARDFORM_API_SECRET: as
#   cardform reads them (or cardform.toml for all but the secrets).
set -eu

plan_file=${CARDFORM_PLAN:-plan.json}
markdown=${plan_file%.json}.md
exitcode_file=${plan_file%.json}.exitcode
errors=${plan_file%.json}.err

# The declarations as `-f` flags; none when CARDFORM_FILES is set empty (cardform.toml says).
files_args() {
    for f in ${CARDFORM_FILES-cards/}; do
        printf ' -f %s' "$f"
    done
}

step_install() {
    : "${CARDFORM_VERSION:?set CARDFORM_VERSION to the release to install (e.g. 0.9.0)}"
    base=${CARDFORM_RELEASES:-https://github.com/OWNER/cardform/releases/download}
    bin_dir=${CARDFORM_BIN_DIR:-$HOME/.local/bin}
    archive="cardform-$CARDFORM_VERSION-x86_64-unknown-linux-gnu.tar.gz"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    curl -fsSL --retry 3 -o "$work/$archive" "$base/v$CARDFORM_VERSION/$archive"
    curl -fsSL --retry 3 -o "$work/$archive.sha256" "$base/v$CARDFORM_VERSION/$archive.sha256"
    # The checksum file may hold `HASH` or `HASH  NAME`: only the hash is compared.
    expected=$(cut -d ' ' -f 1 < "$work/$archive.sha256")
    actual=$(sha256sum "$work/$archive" | cut -d ' ' -f 1)
    if [ "$expected" != "$actual" ]; then
        echo "error: $archive does not match its published sha256 ($actual, expected $expected): not installed" >&2
        exit 1
    fi
    mkdir -p "$work/x" "$bin_dir"
    tar -xzf "$work/$archive" -C "$work/x"
    binary=$(find "$work/x" -type f -name cardform | head -n 1)
    if [ -z "$binary" ]; then
        echo "error: $archive holds no cardform binary" >&2
        exit 1
    fi
    install -m 0755 "$binary" "$bin_dir/cardform"
    if [ -n "${GITHUB_PATH:-}" ]; then
        echo "$bin_dir" >> "$GITHUB_PATH"
    fi
    "$bin_dir/cardform" --version
}

step_plan() {
    rm -f "$plan_file" "$markdown" "$exitcode_file"
    set +e
    # shellcheck disable=SC2046 # the -f flags are split on purpose
    cardform plan $(files_args) --format markdown --detailed-exitcode \
        ${CARDFORM_MAX_FEES:+--max-fees "$CARDFORM_MAX_FEES"} \
        --out "$plan_file" > "$markdown" 2> "$errors"
    code=$?
    set -e
    cat "$errors" >&2
    # 0 no changes, 2 changes, anything else a failure; a failure before any markdown (invalid
    # declarations, an unreachable state) is commented as its error text.
    if [ ! -s "$markdown" ]; then
        {
            echo "### cardform plan"
            echo
            echo "❌ **no plan could be made** (exit $code)"
            echo
            echo '```text'
            head -c 60000 "$errors"
            echo
            echo '```'
        } > "$markdown"
    fi
    echo "$code" > "$exitcode_file"
    if [ -n "${GITHUB_OUTPUT:-}" ]; then
        echo "exitcode=$code" >> "$GITHUB_OUTPUT"
    fi
    echo "cardform plan exited $code; $markdown is ready to comment" >&2
}

step_comment() {
    pr=${1:?usage: steps.sh comment PR_NUMBER}
    gh pr comment "$pr" --body-file "$markdown"
}

step_verdict() {
    code=$(cat "$exitcode_file" 2>/dev/null || echo 1)
    case "$code" in
        0) echo "no changes" ;;
        2) echo "changes planned: review the comment; merging applies $plan_file" ;;
        *) echo "error: the plan failed (exit $code): see the pull request comment" >&2; exit 1 ;;
    esac
}

step_apply() {
    if [ ! -s "$plan_file" ]; then
        echo "error: no reviewed plan at $plan_file: nothing applied" >&2
        exit 1
    fi
    # Waits for a person applying by hand rather than failing at once.
    cardform apply "$plan_file" --lock-timeout 10m
}

step_backup() {
    cardform state backup state-backup.db
    cardform state audit --since "$(date -u +%F)" --format csv > audit.csv
}

case "${1:-}" in
    install | plan | verdict | apply | backup) "step_$1" ;;
    comment) shift; step_comment "$@" ;;
    *) echo "usage: steps.sh install|plan|comment PR|verdict|apply|backup" >&2; exit 2 ;;
esac
