# Sourced by the deploy/bench-*.sh scripts: the median and range of integers.
#
# median_range V1 V2 …  sets MED, MIN and MAX (the median of an even count is
# the mean of the middle two, rounded down).
median_range() {
  local sorted n
  mapfile -t sorted < <(printf '%s\n' "$@" | sort -n)
  n=${#sorted[@]}
  ((n > 0)) || { echo "median_range: no values" >&2; return 1; }
  if ((n % 2)); then MED=${sorted[n / 2]}; else MED=$(((sorted[n / 2 - 1] + sorted[n / 2]) / 2)); fi
  MIN=${sorted[0]}
  MAX=${sorted[n - 1]}
}
