#!/usr/bin/env bash
# Packs an already-built cardform into the release archive `cardform-VERSION-TARGET.tar.gz` and
# its checksum file `cardform-VERSION-TARGET.tar.gz.sha256` (sha256sum's format), in OUT_DIR.
#
#   scripts/package.sh BIN_DIR OUT_DIR [TARGET]
#
# BIN_DIR holds the `cardform` binary (e.g. target/dist, or target/TRIPLE/dist); TARGET is the
# Rust target triple it was built for (default: this host's, from rustc). The archive holds one
# folder of the same name with the binary, its man pages (man/man1/), the bash, zsh and fish
# completions (completions/), and README/LICENSE files. The man pages and completions are written
# by the binary itself (hidden `generate-man` / `generate-completions`), so it must run here:
# the release workflow builds each target on a runner of that target.
# Builds nothing; prints the archive's path on stdout as its last line. CARDFORM_GZIP_LEVEL
# (default 9) trades size for time: the tests pack a 100 MB debug binary at level 1.
set -euo pipefail

usage() { echo "usage: $0 BIN_DIR OUT_DIR [TARGET]" >&2; exit 2; }
[ $# -ge 2 ] && [ $# -le 3 ] || usage
bin_dir=$1
out_dir=$2
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$bin_dir/cardform"
[ -x "$bin" ] || { echo "error: no executable cardform in $bin_dir (build it first)" >&2; exit 1; }

target=${3:-}
if [ -z "$target" ]; then
    target=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
    [ -n "$target" ] || { echo "error: no TARGET given and rustc cannot say the host's" >&2; exit 1; }
fi
# `cardform 0.1.0 (abc123, built 2026-12-08)` → 0.1.0: the archive is named after what the binary
# says it is, never after a tag that might disagree with Cargo.toml.
version=$("$bin" --version | awk '{print $2}')
[ -n "$version" ] || { echo "error: $bin --version printed no version" >&2; exit 1; }

name="cardform-$version-$target"
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/$name"
mkdir -p "$stage/man/man1" "$stage/completions"

cp "$bin" "$stage/cardform"
chmod 0755 "$stage/cardform"
"$bin" generate-man "$stage/man/man1" 2>/dev/null
"$bin" generate-completions "$stage/completions" 2>/dev/null
for doc in README.md LICENSE LICENSE-MIT LICENSE-APACHE COPYING NOTICE; do
    [ -f "$root/$doc" ] && cp "$root/$doc" "$stage/"
done

archive="$out_dir/$name.tar.gz"
level=${CARDFORM_GZIP_LEVEL:-9}
# Same inputs, same bytes where GNU tar is there to order and stamp entries (a release built
# twice checks out the same); BSD tar (macOS) packs them as they come.
case $(tar --version 2>/dev/null) in *'GNU tar'*) gnu_tar=1 ;; *) gnu_tar= ;; esac
if [ -n "$gnu_tar" ]; then
    mtime=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
    tar --sort=name --mtime="@$mtime" --owner=0 --group=0 --numeric-owner \
        -C "$work" -cf - "$name" | gzip "-${level}n" > "$archive"
else
    tar -C "$work" -cf - "$name" | gzip "-${level}n" > "$archive"
fi

if command -v sha256sum >/dev/null; then
    sum=$(sha256sum "$archive" | awk '{print $1}')
else
    sum=$(shasum -a 256 "$archive" | awk '{print $1}')
fi
printf '%s  %s\n' "$sum" "$name.tar.gz" > "$archive.sha256"

echo "packed $(find "$stage" -type f | wc -l | tr -d ' ') files, sha256 $sum" >&2
echo "$archive"
