#!/bin/sh
# Installs a cardform release: the binary, its man pages and the bash, zsh and fish completions.
#
#   curl -fsSL https://github.com/OWNER/cardform/releases/latest/download/install.sh | sh
#   sh install.sh [--from PATH|URL] [--version X.Y.Z] [--prefix DIR]
#
# Without --from it downloads `cardform-VERSION-TARGET.tar.gz` for this OS and CPU from the
# GitHub release (the latest unless --version / CARDFORM_VERSION says), with the `.sha256` beside
# it. --from / CARDFORM_INSTALL_FROM takes a local archive or a URL instead; its checksum is the
# `.sha256` file next to it, or CARDFORM_INSTALL_SHA256. The archive is checked against that sum
# before anything is unpacked: a mismatch (or no sum at all) installs nothing.
#
# Where things go (PREFIX: --prefix, else $PREFIX, else ~/.local):
#   PREFIX/bin/cardform
#   PREFIX/share/man/man1/cardform*.1
#   PREFIX/share/bash-completion/completions/cardform
#   PREFIX/share/zsh/site-functions/_cardform
#   PREFIX/share/fish/vendor_completions.d/cardform.fish
# POSIX sh; needs tar, gzip, and sha256sum or shasum (and curl or wget to download).
set -eu

# The release workflow writes its own repository in here for the install.sh it publishes.
repo=${CARDFORM_REPO:-cardform/cardform}
from=${CARDFORM_INSTALL_FROM:-}
version=${CARDFORM_VERSION:-}
prefix=${PREFIX:-${HOME:?HOME is not set; pass --prefix}/.local}

say() { printf '%s\n' "$*"; }
die() { printf 'cardform install: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        --from) [ $# -ge 2 ] || die "--from needs a path or URL"; from=$2; shift 2 ;;
        --version) [ $# -ge 2 ] || die "--version needs a version"; version=${2#v}; shift 2 ;;
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" 2>/dev/null | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

target() {
    os=$(uname -s)
    cpu=$(uname -m)
    case $cpu in
        x86_64|amd64) cpu=x86_64 ;;
        aarch64|arm64) cpu=aarch64 ;;
        *) die "no cardform release for the CPU '$cpu'; build it with cargo install" ;;
    esac
    case $os in
        Linux) echo "$cpu-unknown-linux-gnu" ;;
        Darwin) echo "$cpu-apple-darwin" ;;
        *) die "no cardform release for the OS '$os'; build it with cargo install" ;;
    esac
}

fetch() { # URL FILE
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --proto '=https' --tlsv1.2 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1"
    else
        die "neither curl nor wget is installed to download $1"
    fi
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{print $1}'
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | awk '{print $1}'
    else
        die "neither sha256sum nor shasum is installed: cannot verify the archive"
    fi
}

work=$(mktemp -d "${TMPDIR:-/tmp}/cardform-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
archive="$work/cardform.tar.gz"
sumfile="$work/cardform.tar.gz.sha256"

case $from in
    '')
        if [ -z "$version" ]; then
            fetch "https://api.github.com/repos/$repo/releases/latest" "$work/latest.json" ||
                die "cannot ask GitHub for the latest release of $repo (pass --version)"
            version=$(sed -n 's/.*"tag_name": *"v\{0,1\}\([^"]*\)".*/\1/p' "$work/latest.json" | head -n 1)
            [ -n "$version" ] || die "no latest release of $repo found (pass --version)"
        fi
        url="https://github.com/$repo/releases/download/v$version/cardform-$version-$(target).tar.gz"
        say "downloading $url"
        fetch "$url" "$archive" || die "cannot download $url"
        fetch "$url.sha256" "$sumfile" || die "cannot download $url.sha256"
        source=$url
        ;;
    http://*|https://*)
        say "downloading $from"
        fetch "$from" "$archive" || die "cannot download $from"
        [ -n "${CARDFORM_INSTALL_SHA256:-}" ] || fetch "$from.sha256" "$sumfile" ||
            die "cannot download $from.sha256 (or set CARDFORM_INSTALL_SHA256)"
        source=$from
        ;;
    *)
        [ -f "$from" ] || die "no archive at $from"
        cp "$from" "$archive"
        if [ -z "${CARDFORM_INSTALL_SHA256:-}" ]; then
            [ -f "$from.sha256" ] || die "no checksum: neither $from.sha256 nor CARDFORM_INSTALL_SHA256"
            cp "$from.sha256" "$sumfile"
        fi
        source=$from
        ;;
esac

if [ -n "${CARDFORM_INSTALL_SHA256:-}" ]; then
    expected=$CARDFORM_INSTALL_SHA256
else
    expected=$(awk 'NR == 1 {print $1}' "$sumfile")
fi
expected=$(printf '%s' "$expected" | tr 'A-F' 'a-f')
case $expected in
    *[!0-9a-f]*|'') die "the checksum for $source is not a sha256 hex digest: '$expected'" ;;
esac
[ ${#expected} -eq 64 ] || die "the checksum for $source is not a sha256 hex digest: '$expected'"
actual=$(sha256_of "$archive")
if [ "$actual" != "$expected" ]; then
    die "checksum mismatch for $source: expected sha256 $expected, got $actual; nothing was installed"
fi
say "verified sha256 $actual"

mkdir "$work/x"
tar -xzf "$archive" -C "$work/x" || die "cannot unpack $source"
set -- "$work"/x/cardform-*/cardform
[ -f "$1" ] || die "$source holds no cardform-*/cardform"
pkg=$(dirname "$1")
# A binary for another OS or CPU would install and then fail on every run: try it first.
"$pkg/cardform" --version >/dev/null 2>&1 || die "the cardform in $source does not run here (another OS or CPU?)"

bin_dir="$prefix/bin"
man_dir="$prefix/share/man/man1"
bash_dir="$prefix/share/bash-completion/completions"
zsh_dir="$prefix/share/zsh/site-functions"
fish_dir="$prefix/share/fish/vendor_completions.d"
mkdir -p "$bin_dir" "$man_dir" "$bash_dir" "$zsh_dir" "$fish_dir"

# Replaced by a rename, so a cardform running from the old file keeps running.
cp "$pkg/cardform" "$bin_dir/.cardform.new"
chmod 0755 "$bin_dir/.cardform.new"
mv -f "$bin_dir/.cardform.new" "$bin_dir/cardform"
say "installed $bin_dir/cardform ($("$bin_dir/cardform" --version))"

pages=0
for page in "$pkg"/man/man1/*.1; do
    [ -f "$page" ] || continue
    cp "$page" "$man_dir/"
    pages=$((pages + 1))
done
say "installed $pages man pages in $man_dir (man cardform)"

install_completion() { # FILE DEST
    if [ -f "$pkg/completions/$1" ]; then
        cp "$pkg/completions/$1" "$2"
        say "installed $2"
    fi
}
install_completion cardform.bash "$bash_dir/cardform"
install_completion _cardform "$zsh_dir/_cardform"
install_completion cardform.fish "$fish_dir/cardform.fish"

case ":${PATH:-}:" in
    *":$bin_dir:"*) ;;
    *) say "note: $bin_dir is not on your PATH; add it, e.g. export PATH=\"$bin_dir:\$PATH\"" ;;
esac
