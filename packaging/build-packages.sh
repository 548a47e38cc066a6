#!/usr/bin/env bash
# packaging/build-packages.sh: build the .deb (cargo-deb) and the .rpm (cargo-generate-rpm).
#
#   packaging/build-packages.sh                  release: cargo build --release, then both packages
#   packaging/build-packages.sh --binary FILE    package FILE (e.g. target/debug/nta7516-milter)
#                                                instead of building; what the e2e test does
#   options:
#     --out DIR          where the packages go [default: target/packages]
#     --fast             faster, larger compression (tests)
#     --deb-only | --rpm-only
#     --install-tools    `cargo install --locked` the pinned cargo-deb / cargo-generate-rpm
#                        when they are missing (each takes a few minutes to compile)
#
# Release builds keep the line tables of [profile.release] in a separate
# nta7516-milter-dbgsym_*.ddeb; the .deb and the .rpm get a stripped binary.
# With --binary, FILE is stripped into a staging target directory that cargo-deb and
# cargo-generate-rpm read as "target/release" (their asset paths must stay target/release/...).
set -euo pipefail

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}

binary="" out="$target_dir/packages" fast=0 deb=1 rpm=1 install_tools=0
while [ "$#" -gt 0 ]; do
    case "$1" in
    --binary) binary=$(realpath "$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --fast) fast=1; shift ;;
    --deb-only) rpm=0; shift ;;
    --rpm-only) deb=0; shift ;;
    --install-tools) install_tools=1; shift ;;
    -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-packages.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
say() { printf '[packaging] %s\n' "$*"; }

need_tool() { # SUBCOMMAND CRATE VERSION
    if cargo "$1" --version >/dev/null 2>&1; then
        return 0
    fi
    if [ "$install_tools" -eq 1 ]; then
        say "installing $2 $3 (cargo install --locked)"
        local t=$SECONDS
        cargo install --locked --quiet "$2@$3"
        say "installed $2 $3 in $((SECONDS - t))s"
    else
        echo "build-packages.sh: cargo $1 is missing: cargo install --locked $2@$3 (or pass --install-tools)" >&2
        exit 2
    fi
}
[ "$deb" -eq 0 ] || need_tool deb cargo-deb "$CARGO_DEB_VERSION"
[ "$rpm" -eq 0 ] || need_tool generate-rpm cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"

cd "$repo"
"$here/make-config.sh" --check

mkdir -p "$out"
out=$(realpath "$out")
stage=$(mktemp -d "${TMPDIR:-/tmp}/nta7516-packaging.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/release"

if [ -z "$binary" ]; then
    say "cargo build --release --locked"
    cargo build --release --locked --bin nta7516-milter
    if [ "$deb" -eq 1 ]; then
        say "cargo deb (release binary, dbgsym)"
        cargo deb --no-build --locked --output "$out"
    fi
    binary="$target_dir/release/nta7516-milter"
    strip --strip-all -o "$stage/release/nta7516-milter" "$binary"
else
    [ -x "$binary" ] || { echo "build-packages.sh: $binary is not an executable" >&2; exit 2; }
    strip --strip-all -o "$stage/release/nta7516-milter" "$binary"
    if [ "$deb" -eq 1 ]; then
        say "cargo deb (binary $binary, stripped)"
        flags=(--no-build --no-dbgsym --strip --output "$out")
        [ "$fast" -eq 0 ] || flags+=(--fast)
        CARGO_TARGET_DIR="$stage" cargo deb "${flags[@]}"
    fi
fi

if [ "$rpm" -eq 1 ]; then
    say "cargo generate-rpm (stripped binary)"
    flags=(--target-dir "$stage" --output "$out")
    [ "$fast" -eq 0 ] || flags+=(--payload-compress gzip)
    cargo generate-rpm "${flags[@]}"
fi

say "packages in $out:"
ls -l "$out"
