#!/usr/bin/env bash
# Export the work as an upstream patch series: the patches in patches/, in
# order, each carrying the new files series/newfiles.txt assigns to it,
# then new-file-only commits (samples). Writes git format-patch output with
# a cover letter (series/cover.txt plus the latest benchmark summary) to
# build/series-out/, checks that it applies with git am to the pristine
# base and runs checkpatch --strict on every patch.
#
#   scripts/export-series.sh [--build-each [--from N]] [--build-configs] [-v N]
#
# --build-each also builds the kernel (the test config, ccache, a separate
# object directory) at every commit of the series, incrementally, and the
# selftests at the commit that adds them: every step must build. --from N
# starts at patch N (the ones before it unchanged since they last built).
# --build-configs builds the whole series in the configurations the test
# kernel does not cover and the stubs exist for: no networking at all
# (CONFIG_NET=n) and networking without TCP/IP (CONFIG_INET=n).
. "$(dirname "$0")/common.sh"

build_each=0 build_configs=0 version=() from=1
while [ $# -gt 0 ]; do
	case "$1" in
	--build-each) build_each=1; shift ;;
	--build-configs) build_configs=1; shift ;;
	--from) from=$2; shift 2 ;;
	-v) version=(-v "$2"); shift 2 ;;
	*) die "unknown argument $1" ;;
	esac
done

SER=$BUILD/series
OUT=$BUILD/series-out
MAP=$TOP/series/newfiles.txt
ident="$(git -C "$TOP" log -1 --format='%an <%ae>' -- patches)"
export GIT_AUTHOR_NAME="${ident% <*}" GIT_AUTHOR_EMAIL="${ident##*<}"
GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL%>}
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL

[ -d "$SRC/.git" ] || die "no base tree yet: run scripts/assemble.sh"
git -C "$SRC" worktree prune
[ -e "$SER/.git" ] || git -C "$SRC" worktree add -q --detach "$SER" base
git -C "$SER" am --abort > /dev/null 2>&1 || true
git -C "$SER" checkout -q -f --detach base
git -C "$SER" clean -q -fdx

# owner of each new file: "subject" or "@name"
declare -A owner
while IFS=$'\t' read -r path who; do
	case "$path" in ''|'#'*) continue ;; esac
	owner[$path]=$who
done < "$MAP"

new_files_of() {	# $1 = owner; prints the new files it carries
	local p
	for p in "${!owner[@]}"; do
		[ "${owner[$p]}" = "$1" ] || continue
		if [ -d "$TOP/$p" ]; then
			git -C "$TOP" ls-files -- "$p"
		else
			echo "$p"
		fi
	done | sort
}

add_files() {	# $@ = paths relative to TOP
	local f
	for f in "$@"; do
		git -C "$SER" cat-file -e "base:$f" 2> /dev/null &&
			die "$f is an upstream file"
		mkdir -p "$SER/$(dirname "$f")"
		cp -p "$TOP/$f" "$SER/$f"
		git -C "$SER" add -f "$f"
	done
}

slug() { echo "$1" | tr -c 'A-Za-z0-9\n' '-' | tr 'A-Z' 'a-z'; }

declare -A used
for p in "$TOP"/patches/*.patch; do
	git -C "$SER" am -q --keep-cr "$p" || die "$(basename "$p") does not apply"
	subject=$(git -C "$SER" log -1 --format=%s)
	mapfile -t files < <(new_files_of "$subject")
	[ ${#files[@]} -gt 0 ] || continue
	add_files "${files[@]}"
	msg=$TOP/series/msg/$(slug "$subject").txt
	[ -f "$TOP/series/msg/selftests.txt" ] && [ "$subject" = "selftests: add the netfile target" ] &&
		msg=$TOP/series/msg/selftests.txt
	if [ -f "$msg" ]; then
		git -C "$SER" commit -q --amend -s -F "$msg"
	else
		git -C "$SER" commit -q --amend --no-edit
	fi
	for f in "${files[@]}"; do used[$f]=1; done
done
for who in $(printf '%s\n' "${owner[@]}" | grep '^@' | sort -u); do
	mapfile -t files < <(new_files_of "$who")
	add_files "${files[@]}"
	git -C "$SER" commit -q -s -F "$TOP/series/msg/${who#@}.txt"
	for f in "${files[@]}"; do used[$f]=1; done
done

# Every new file of the project must be in the series.
missing=0
for d in "${NEW_FILE_DIRS[@]}"; do
	[ -d "$TOP/$d" ] || continue
	while IFS= read -r f; do
		git -C "$SER" cat-file -e "base:$f" 2> /dev/null && continue
		[ -n "${used[$f]:-}" ] || { echo "not in the series: $f"; missing=1; }
	done < <(git -C "$TOP" ls-files -- "$d")
done
[ "$missing" = 0 ] || die "assign the files above in series/newfiles.txt"

# The series must produce exactly the tree the project builds.
if [ -d "$ASM/.git" ] || [ -f "$ASM/.git" ]; then
	"$TOP/scripts/assemble.sh" > /dev/null
	git -C "$ASM" diff --quiet HEAD "$(git -C "$SER" rev-parse HEAD)" -- . ||
		die "the exported series differs from the assembled tree"
fi

rm -rf "$OUT"
mkdir -p "$OUT"
n=$(git -C "$SER" rev-list --count base..HEAD)
git -C "$SER" format-patch -q "${version[@]}" --cover-letter --thread \
	--base=base -o "$OUT" base..HEAD

# Cover letter: our text, the benchmark summary, the shortlog and stat.
cover=$(ls "$OUT"/*0000-cover-letter.patch)
{
	sed -n '1p' "$TOP/series/cover.txt"
} > "$OUT/.subject"
# The release run (no debug options) if there is one, else the debug run.
bench=$BUILD/bench/fsrv-release.txt kind="config without debug options"
[ -f "$bench" ] || { bench=$BUILD/bench/fsrv.txt kind="debug config"; }
python3 - "$cover" "$TOP/series/cover.txt" "$bench" "$kind" <<'PY'
import os, sys
cover, text, bench, kind = sys.argv[1:5]
lines = open(text).read().split("\n")
subject, body = lines[0], "\n".join(lines[2:]).rstrip() + "\n"
if os.path.exists(bench):
    rows = [l for l in open(bench) if l.startswith("|") and
            ("| 8m |" in l or "| op |" in l or "|---" in l)]
    head = [l for l in open(bench) if l.startswith("memcpy")]
    body += ("\nBenchmark (samples/netfile/fsrv in the patched kernel under QEMU TCG,\n"
             f"{kind}; ratios of medians measured side by side in one boot;\n"
             "8 MiB requests; the full table is produced by scripts/bench.sh):\n\n")
    body += "".join(head) + "\n" + "".join(rows)
    targets = bench.replace(".txt", "-targets.txt")
    if os.path.exists(targets):
        body += "\nThe targets we set ourselves, over these cells:\n\n"
        body += open(targets).read()
c = open(cover).read()
c = c.replace("*** SUBJECT HERE ***", subject).replace("*** BLURB HERE ***", body)
open(cover, "w").write(c)
PY
rm -f "$OUT/.subject"

# It must apply to the pristine base with git am.
check=$BUILD/series-check
git -C "$SRC" worktree prune
[ -e "$check/.git" ] || git -C "$SRC" worktree add -q --detach "$check" base
git -C "$check" am --abort > /dev/null 2>&1 || true
git -C "$check" checkout -q -f --detach base
git -C "$check" clean -q -fdx
mapfile -t series < <(ls "$OUT"/*.patch | grep -v cover-letter)
git -C "$check" am -q "${series[@]}" ||
	die "the series does not apply to the base with git am"
[ "$(git -C "$check" rev-parse HEAD^{tree})" = "$(git -C "$SER" rev-parse HEAD^{tree})" ] ||
	die "git am of the series gives a different tree"
say "series of $n patches applies to the base with git am"

# checkpatch --strict on every patch. Ignored everywhere: FILE_PATH_CHANGES
# (the MAINTAINERS entry comes as its own patch near the end). Ignored in
# user-space code only (selftests, samples): PREFER_KERNEL_TYPES (uint64_t
# is what user space has) and ENOSYS (tests skip when a syscall is absent).
bad=0
for p in "$OUT"/*.patch; do
	case "$p" in *cover-letter*) continue ;; esac
	ignore=FILE_PATH_CHANGES
	# files outside user-space code (grep reads all: no SIGPIPE)
	kernel_files=$(grep '^+++ b/' "$p" |
		grep -vE '^\+\+\+ b/(tools/testing/selftests|samples)/' || true)
	if ! grep -q '^+++ b/' "$p" || [ -z "$kernel_files" ]; then
		ignore+=,PREFER_KERNEL_TYPES,ENOSYS
	fi
	res=$(perl "$SER/scripts/checkpatch.pl" --strict -q --no-signoff --show-types \
		--ignore "$ignore" "$p" 2> /dev/null | grep -E '^(ERROR|WARNING|CHECK)' || true)
	if [ -n "$res" ]; then
		echo "checkpatch: $(basename "$p")"
		echo "$res" | sed 's/^/    /'
		bad=1
	fi
done
[ "$bad" = 0 ] && say "checkpatch --strict: clean"

# kernel-doc on the new C files and functions, and the new rst pages
# parsed by docutils (what htmldocs would choke on), plus the tree's
# documentation cross-reference check for the pages we touch.
kdoc=$(cd "$SER" && perl scripts/kernel-doc -none -Wall fs/recvfile.c net/ipv4/tcp_recvfile.c \
	include/linux/recvfile.h 2>&1; perl scripts/kernel-doc -none -Wall fs/splice.c 2>&1 |
	grep do_splice_notify || true)
[ -z "$kdoc" ] && say "kernel-doc: clean" || { echo "$kdoc"; bad=1; }
for rst in Documentation/filesystems/recvfile.rst Documentation/networking/splice_notify.rst \
	   Documentation/networking/msg_zerocopy.rst; do
	python3 -m docutils --halt=warning "$SER/$rst" /dev/null || { echo "docutils: $rst"; bad=1; }
done
refs=$(cd "$SER" && perl scripts/documentation-file-ref-check 2>&1 |
	grep -E 'recvfile|splice_notify|netfile' || true)
[ -z "$refs" ] && say "documentation: the new pages parse, no broken references" ||
	{ echo "$refs"; bad=1; }

if [ "$build_each" = 1 ]; then
	obj=$BUILD/obj-series
	mkdir -p "$obj"
	cp "$OBJ/.config" "$obj/.config"
	export CCACHE_DIR=$BUILD/ccache
	i=0
	for c in $(git -C "$SER" rev-list --reverse base..HEAD); do
		i=$((i + 1))
		[ "$i" -ge "$from" ] || continue
		s=$(git -C "$SER" log -1 --format=%s "$c")
		git -C "$SER" checkout -q --detach "$c"
		t0=$SECONDS
		if ! make -s -C "$SER" O="$obj" CC="ccache gcc" olddefconfig > /dev/null ||
		   ! make -s -C "$SER" O="$obj" CC="ccache gcc" -j"$(nproc)" bzImage \
			> "$obj/build.log" 2>&1; then
			tail -30 "$obj/build.log"
			die "does not build: $s"
		fi
		if [ -n "$(git -C "$SER" diff-tree --no-commit-id --name-only -r "$c" -- tools/testing/selftests/netfile/)" ]; then
			make -s -C "$SER" O="$obj" headers_install > /dev/null
			mkdir -p "$obj/kselftest"
			make -s -C "$SER/tools/testing/selftests/netfile" \
				KHDR_INCLUDES="-isystem $obj/usr/include" OUTPUT="$obj/kselftest" \
				> "$obj/selftests.log" 2>&1 || die "selftests do not build at: $s"
		fi
		say "builds ($((SECONDS - t0)) s): $i $s"
	done
	git -C "$SER" checkout -q --detach "$(git -C "$SER" rev-list -1 HEAD)"
fi
# allnoconfig plus what the series' code is built under (io_uring, tmpfs,
# splice users), with and without the network stack.
build_config() {
	local name=$1 obj=$BUILD/obj-cfg-$1 frag t0=$SECONDS
	shift
	mkdir -p "$obj"
	frag=$obj/fragment.config
	printf '%s\n' CONFIG_64BIT=y CONFIG_MULTIUSER=y CONFIG_IO_URING=y \
		CONFIG_SHMEM=y CONFIG_TMPFS=y CONFIG_BLOCK=y CONFIG_EXT4_FS=y \
		CONFIG_XFS_FS=y CONFIG_PROC_FS=y "$@" > "$frag"
	(cd "$SER" && scripts/kconfig/merge_config.sh -n -O "$obj" "$frag") \
		> "$obj/config.log" 2>&1 || die "merge_config failed for $name"
	for opt in "$@"; do
		case "$opt" in
		"# "*) opt=${opt#\# }; ! grep -q "^${opt%% *}=" "$obj/.config" ;;
		*) grep -qxF "$opt" "$obj/.config" ;;
		esac || die "$name: $opt did not survive olddefconfig"
	done
	if ! make -s -C "$SER" O="$obj" CC="ccache gcc" -j"$(nproc)" bzImage \
		> "$obj/build.log" 2>&1; then
		grep -E -m 30 'error|undefined' "$obj/build.log" || true
		die "the series does not build with $name"
	fi
	grep -E -m 10 'warning:' "$obj/build.log" || true
	say "builds with $name ($((SECONDS - t0)) s)"
}

if [ "$build_configs" = 1 ]; then
	export CCACHE_DIR=$BUILD/ccache
	git -C "$SER" checkout -q --detach "$(git -C "$SER" rev-list -1 HEAD)"
	build_config net-off "# CONFIG_NET is not set"
	build_config inet-off CONFIG_NET=y CONFIG_UNIX=y "# CONFIG_INET is not set"
fi
say "series: $OUT"
ls "$OUT"
