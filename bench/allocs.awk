# allocs.awk - heap allocations per request in callgrind outputs (used by
# instructions.sh): the calls into Go's runtime.mallocgc and into C's malloc
# family, from callers that are not part of the allocator themselves,
# divided by n (awk -v n=REQUESTS -f allocs.awk callgrind.out.*). Names are
# compressed per file: "(12) name" the first time, "(12)" after.
function name(s,   id, rest) {
  if (match(s, /^\([0-9]+\)/)) {
    id = substr(s, 2, RLENGTH - 2); rest = substr(s, RLENGTH + 2)
    if (rest != "") names[FILENAME, id] = rest
    return names[FILENAME, id]
  }
  return s
}
function allocator(f) {
  return f == "runtime.mallocgc" ||
    f ~ /^(__libc_)?(malloc|calloc|realloc|memalign|valloc)$/ || f ~ /^_?_?posix_memalign$/ || f == "aligned_alloc"
}
/^fn=/ { fn = name(substr($0, 4)); next }
/^cfn=/ { callee = name(substr($0, 5)); next }
/^calls=/ {
  split(substr($0, 7), a, " ")
  if (allocator(callee) && !allocator(fn)) calls += a[1]
  next
}
END { if (n > 0) printf "%.2f\n", calls / n; else print "-" }
