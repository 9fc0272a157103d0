#!/bin/sh
# git-sync's exechook: after each sync, in the new worktree, publish its
# definitions tree to $TREE the way Kubernetes publishes a ConfigMap
# volume, which tasksync follows (docs/format.md, "The definitions
# tree"): a copy in a new hidden directory, one atomic swap of the
# ..data symlink, a symlink per tenant into ..data. The copy is needed:
# git-sync removes the worktree at the next sync, and tasksync reads the
# tree it resolved at start.
set -eu
tree=${TREE:?set TREE to the directory tasksync reads}
src=${TREE_SUBDIR:-tasks.d}
[ -d "$src" ] || { echo "publish-tree: no $src in the repository" >&2; exit 1; }
new="..$(date -u +%Y_%m_%d_%H_%M_%S).$$"
cp -R "$src" "$tree/$new"
ln -sfn "$new" "$tree/..data_tmp"
mv -T "$tree/..data_tmp" "$tree/..data"
for dir in "$tree/..data"/*/; do
	[ -d "$dir" ] || continue
	tenant=$(basename "$dir")
	[ -L "$tree/$tenant" ] || ln -s "..data/$tenant" "$tree/$tenant"
done
# Links of tenants that are gone, and the copies before this one.
for link in "$tree"/*; do
	if [ -L "$link" ] && [ ! -e "$link" ]; then rm -f "$link"; fi
done
for old in "$tree"/..[0-9]*; do
	if [ "$old" != "$tree/$new" ]; then rm -rf "$old"; fi
done
echo "publish-tree: published ${GITSYNC_HASH:-the worktree}'s $src"
