#!/usr/bin/env bash
# Assemble the kernel tree: pristine base + patches/*.patch + the project's new
# files, into build/linux. Incremental: the base is unpacked once per pinned
# version, and only files whose content changed are rewritten, so make
# rebuilds only what the change touches.
. "$(dirname "$0")/common.sh"

# Directories of this repo that hold new files at their in-tree paths.

git_asm() { git -C "$ASM" -c user.name="${GIT_AUTHOR_NAME:-netfile build}" \
	-c user.email="${GIT_AUTHOR_EMAIL:-build@localhost}" "$@"; }

unpack_base() {
	local stamp=$BUILD/base.stamp
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$BASE_VERSION" ] &&
	   git -C "$SRC" rev-parse -q --verify refs/tags/base >/dev/null; then
		return 0
	fi
	[ -f "$BASE_TARBALL" ] || die "$BASE_TARBALL missing: install $BASE_PKG=$BASE_VERSION"
	local have
	have=$(dpkg-query -W -f='${Version}' "$BASE_PKG" 2>/dev/null || true)
	[ "$have" = "$BASE_VERSION" ] || die "$BASE_PKG is $have, scripts/base.env pins $BASE_VERSION"
	say "unpacking $BASE_PKG $BASE_VERSION (once per pinned version)"
	rm -rf "$SRC" "$ASM" "$OBJ" "$stamp"
	mkdir -p "$SRC"
	tar -xf "$BASE_TARBALL" -C "$SRC" --strip-components=1
	git -C "$SRC" init -q -b base-tree
	git -C "$SRC" config core.autocrlf false
	git -C "$SRC" config gc.auto 0
	git -C "$SRC" add -A -f .
	GIT_AUTHOR_DATE='2000-01-01T00:00:00Z' GIT_COMMITTER_DATE='2000-01-01T00:00:00Z' \
	git -C "$SRC" -c user.name='Debian linux-source' -c user.email='debian-kernel@lists.debian.org' \
		commit -q -m "Linux $BASE_VERSION (Debian $BASE_PKG, pristine)"
	git -C "$SRC" tag base
	echo "$BASE_VERSION" > "$stamp"
}

# Build the series in the scratch worktree: base, then each patch with git am,
# then one commit holding the new files.
build_series() {
	if [ ! -d "$ASM/.git" ] && [ ! -f "$ASM/.git" ]; then
		git -C "$SRC" worktree prune
		git -C "$SRC" worktree add -q --detach "$ASM" base
	fi
	git_asm am --abort >/dev/null 2>&1 || true
	git_asm checkout -q -f --detach base
	git_asm clean -q -fdx
	local p
	for p in "$TOP"/patches/*.patch; do
		[ -e "$p" ] || continue
		git_asm am -q --keep-cr "$p" ||
			die "patch $(basename "$p") does not apply to the base; see 'git -C $ASM am --show-current-patch'"
	done
	[ -n "${PATCHES_ONLY:-}" ] && return 0
	copy_new_files
	# -f: the base's top-level .gitignore ignores new top-level paths.
	git_asm add -A -f .
	if ! git -C "$ASM" diff --cached --quiet; then
		git_asm commit -q -m "netfile: project files not yet split into the series"
	fi
}

copy_new_files() {
	local d f
	for d in "${NEW_FILE_DIRS[@]}"; do
		[ -d "$TOP/$d" ] || continue
		while IFS= read -r -d '' f; do
			f=${f#"$TOP"/}
			if git -C "$ASM" cat-file -e "base:$f" 2>/dev/null; then
				die "$f is an upstream file: change it with a patch in patches/, not a copy"
			fi
			mkdir -p "$ASM/$(dirname "$f")"
			cp -p "$TOP/$f" "$ASM/$f"
		done < <(find "$TOP/$d" -type f -print0)
	done
}

# Move build/linux to the assembled commit. git rewrites only the files that
# differ, so unchanged files keep their mtimes and make stays incremental.
checkout_series() {
	local want
	want=$(git -C "$ASM" rev-parse HEAD)
	[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
		die "$SRC has local edits; the tree is generated, edit the repo instead"
	git -C "$SRC" checkout -q --detach "$want"
	git -C "$SRC" branch -f assembled "$want" >/dev/null
}

mkdir -p "$BUILD"
unpack_base
if [ "${1:-}" = --patches-only ]; then
	PATCHES_ONLY=1
fi
build_series
[ -n "${PATCHES_ONLY:-}" ] && { say "build/assemble holds base + patches, ready to edit"; exit 0; }
checkout_series
say "assembled tree at $SRC ($(git -C "$SRC" log --oneline base..HEAD | wc -l) commits on base)"
