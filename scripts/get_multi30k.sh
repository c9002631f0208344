#!/usr/bin/env bash
# Fetch the Multi30k task-1 German–English files (raw text) into DEST (default: data/multi30k) and check them.
#
#   scripts/get_multi30k.sh [--from DIR] [DEST]
#
# Without --from, downloads train, val and test_2016_flickr (.de/.en) from the Multi30k dataset repository
# (https://github.com/multi30k/dataset, data/task1/raw). With --from DIR, copies the same six files from a
# local directory instead (plain or .gz). Either way the line counts must be 29000 / 1014 / 1000.
set -euo pipefail

BASE_URL="https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
SPLITS=(train val test_2016_flickr)
declare -A LINES=([train]=29000 [val]=1014 [test_2016_flickr]=1000)

from=""
if [ "${1:-}" = "--from" ]; then
  [ $# -ge 2 ] || { echo "usage: $0 [--from DIR] [DEST]" >&2; exit 2; }
  from="$2"
  shift 2
fi
dest="${1:-data/multi30k}"
mkdir -p "$dest"

fetch() {  # fetch NAME: write $dest/NAME (plain text) atomically
  local name="$1" tmp
  tmp="$dest/.$name.$$.part"
  if [ -n "$from" ]; then
    if [ -f "$from/$name" ]; then
      cp "$from/$name" "$tmp"
    elif [ -f "$from/$name.gz" ]; then
      gunzip -c "$from/$name.gz" > "$tmp"
    else
      rm -f "$tmp"; echo "error: neither $from/$name nor $from/$name.gz exists" >&2; exit 2
    fi
  else
    if command -v curl > /dev/null; then
      curl -fsSL "$BASE_URL/$name.gz" | gunzip -c > "$tmp"
    else
      python3 -c "import gzip, sys, urllib.request; sys.stdout.buffer.write(gzip.decompress(urllib.request.urlopen(sys.argv[1]).read()))" \
        "$BASE_URL/$name.gz" > "$tmp"
    fi
  fi
  mv "$tmp" "$dest/$name"
}

status=0
for split in "${SPLITS[@]}"; do
  for lang in de en; do
    fetch "$split.$lang"
    count=$(wc -l < "$dest/$split.$lang")
    if [ "$count" -ne "${LINES[$split]}" ]; then
      echo "error: $dest/$split.$lang has $count lines, expected ${LINES[$split]}" >&2
      status=2
    fi
  done
done
[ "$status" -eq 0 ] && echo "Multi30k ready in $dest: train 29000, val 1014, test_2016_flickr 1000 pairs"
exit "$status"
