#!/usr/bin/env bash
# Command-line tests of `convjit`: help texts, one-line errors with the right exit code
# and no output file for every kind of bad input, info's JSON, and small runs whose
# output is known exactly.
#
# usage: cli_test.sh PATH/TO/convjit PATH/TO/npy_helper
set -u

CONVJIT=${1:?usage: cli_test.sh CONVJIT NPY_HELPER}
NPY=${2:?usage: cli_test.sh CONVJIT NPY_HELPER}
# Absolute, because the test runs inside its scratch directory.
CONVJIT=$(realpath "$CONVJIT")
NPY=$(realpath "$NPY")
for tool in "$CONVJIT" "$NPY"; do
  if [ ! -x "$tool" ]; then echo "cli_test: $tool is not an executable" >&2; exit 1; fi
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/convjit_cli_test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PYTHON=
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; fi

failures=0
checks=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Runs convjit with the given arguments; sets rc, and leaves stdout/stderr in files.
# (Commands that must use a cache of their own set CONVJIT_CACHE_DIR in front.)
run_convjit() {
  "$CONVJIT" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
  rc=$?
}

# expect_error CODE DST ARGS...: convjit ARGS must exit with CODE, print exactly one
# line on stderr starting with "convjit: error: " and nothing on stdout, and leave
# neither DST nor a temporary file next to it (DST "-" when there is none).
expect_error() {
  local code=$1 dst=$2
  shift 2
  checks=$((checks + 1))
  run_convjit "$@"
  local what="convjit $*"
  if [ "$rc" -ne "$code" ]; then fail "$what: exit $rc, expected $code; stderr: $(cat "$WORK/stderr")"; fi
  local lines
  lines=$(wc -l <"$WORK/stderr")
  if [ "$lines" -ne 1 ]; then fail "$what: $lines lines on stderr, expected 1: $(cat "$WORK/stderr")"; fi
  if [ "$(head -c 16 "$WORK/stderr")" != "convjit: error: " ]; then
    fail "$what: stderr does not start with 'convjit: error: ': $(cat "$WORK/stderr")"
  fi
  if [ -s "$WORK/stdout" ]; then fail "$what: wrote to stdout on error: $(head -c 200 "$WORK/stdout")"; fi
  if [ "$dst" != "-" ]; then
    if [ -e "$dst" ]; then fail "$what: left $dst behind"; fi
    local leftovers
    leftovers=$(find "$(dirname "$dst")" -maxdepth 1 -name ".*.tmp-*" 2>/dev/null)
    if [ -n "$leftovers" ]; then fail "$what: left temporary files: $leftovers"; fi
  fi
}

# expect_help ARGS...: exit 0, usage text on stdout, nothing on stderr.
expect_help() {
  checks=$((checks + 1))
  run_convjit "$@"
  if [ "$rc" -ne 0 ]; then fail "convjit $*: exit $rc, expected 0"; fi
  if ! grep -q "^usage: convjit" "$WORK/stdout"; then fail "convjit $*: no usage text on stdout"; fi
  if [ -s "$WORK/stderr" ]; then fail "convjit $*: wrote to stderr: $(cat "$WORK/stderr")"; fi
}

# expect_output TEXT ARGS...: convjit ARGS exits 0 with TEXT (a fixed string) on stdout.
expect_output() {
  local want=$1
  shift
  checks=$((checks + 1))
  run_convjit "$@"
  if [ "$rc" -ne 0 ] || ! grep -qF "$want" "$WORK/stdout"; then
    fail "convjit $*: exit $rc, expected $want in: $(cat "$WORK/stdout") $(cat "$WORK/stderr")"
  fi
}

# expect_values FILE "v1 v2 ...": the .npy FILE holds exactly these values.
expect_values() {
  checks=$((checks + 1))
  local got
  got=$("$NPY" print "$1" | tail -n +2 | tr '\n' ' ' | sed 's/ $//')
  if [ "$got" != "$2" ]; then fail "$1 holds '$got', expected '$2'"; fi
}

cd "$WORK" || exit 1
mkdir out

# ---- Inputs: a 1x1x3x3 image 0..8 and a 3x3 box filter -----------------------------
D=mb1ic1ih3iw3oc1oh3ow3kh3kw3ph1pw1   # same-size 3x3 convolution
"$NPY" write src.npy f32 1,1,3,3 iota
"$NPY" write wei.npy f32 1,1,3,3 const:1
"$NPY" write bia.npy f32 1 0.5
"$NPY" write src16.npy f16 1,1,3,3 iota
"$NPY" write wei16.npy f16 1,1,3,3 const:1
"$NPY" write src_shape.npy f32 1,1,3,4 iota
"$NPY" write wei5d.npy f32 1,1,1,3,3 const:1
"$NPY" write bia2.npy f32 2 0,0
"$NPY" raw f64.npy "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 3, 3), }" 72
"$NPY" raw fortran.npy "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1, 3, 3), }" 36
"$NPY" raw bigendian.npy "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1, 3, 3), }" 36
"$NPY" raw baddict.npy "{'descr': '<f4', 'fortran_order': False, 'shape': [1, 1, 3, 3], }" 36
"$NPY" raw shortdata.npy "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 3, 3), }" 35
"$NPY" raw huge.npy "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 3, 3), }" 36
"$NPY" raw negative.npy "{'descr': '<f4', 'fortran_order': False, 'shape': (1, -1, 3, 3), }" 36
head -c 30 src.npy >truncheader.npy
echo "just some text, not an array" >text.npy
mkdir dir.npy
touch unreadable.npy
chmod 000 unreadable.npy

RUN=(run "$D" --wei wei.npy --dst out/y.npy)

# ---- Help ---------------------------------------------------------------------------
expect_help --help
expect_help -h
expect_help help
for c in run info compile cache; do
  expect_help help "$c"
  expect_help "$c" --help
  expect_help "$c" -h
done
expect_help run "$D" --src src.npy --help   # --help wins over everything else

# No command or an unknown one: usage on stderr, exit 2.
for args in "" "frobnicate" "help frobnicate"; do
  checks=$((checks + 1))
  # shellcheck disable=SC2086
  run_convjit $args
  if [ "$rc" -ne 2 ]; then fail "convjit $args: exit $rc, expected 2"; fi
  if ! grep -q "^usage: convjit" "$WORK/stderr"; then fail "convjit $args: no usage on stderr"; fi
  if ! grep -q "^convjit: error: " "$WORK/stderr"; then fail "convjit $args: no error line"; fi
  if [ -s "$WORK/stdout" ]; then fail "convjit $args: wrote to stdout"; fi
done

# ---- Usage errors: exit 2 -----------------------------------------------------------
expect_error 2 out/y.npy run "$D" --wei wei.npy --dst out/y.npy                    # no --src
expect_error 2 out/y.npy run "$D" --src src.npy --dst out/y.npy                    # no --wei
expect_error 2 - run "$D" --src src.npy --wei wei.npy                              # no --dst
expect_error 2 out/y.npy run --src src.npy --wei wei.npy --dst out/y.npy           # no descriptor
expect_error 2 out/y.npy "${RUN[@]}" --src                                         # value missing
expect_error 2 out/y.npy "${RUN[@]}" --src src.npy --src src.npy                   # repeated
expect_error 2 out/y.npy "${RUN[@]}" --src src.npy --frobnicate                    # unknown option
expect_error 2 out/y.npy "${RUN[@]}" --src src.npy -x                              # unknown short option
expect_error 2 out/y.npy "${RUN[@]}" --src src.npy mb1ic1ih3oc1oh3kh3ph1           # two descriptors
expect_error 2 out/y.npy "${RUN[@]}" --src src.npy --padding-mode                  # value missing
expect_error 2 out/y.npy "${RUN[@]}" --src src.npy --bias                          # --bias, no --bia
expect_error 2 out/y.npy "${RUN[@]}" --src src.npy --emit stmt                     # compile's option
expect_error 2 - info
expect_error 2 - info "$D" --src src.npy
expect_error 2 - info --batch shapes.txt "$D"
expect_error 2 - compile "$D" -o out/k.stmt
expect_error 2 out/k.stmt compile "$D" --emit stmt
expect_error 2 out/k.stmt compile "$D" --emit pdf -o out/k.stmt

# ---- Input errors: exit 1 -----------------------------------------------------------
expect_error 1 out/y.npy run mb1icXih3oc1oh3kh3ph1 --src src.npy --wei wei.npy --dst out/y.npy
expect_error 1 out/y.npy run mb1ic1ih3oc1oh3kh3ph1foo --src src.npy --wei wei.npy --dst out/y.npy
expect_error 1 out/y.npy run g2mb1ic3ih3oc2oh3kh3ph1 --src src.npy --wei wei.npy --dst out/y.npy
expect_error 1 out/y.npy run mb1ic1ih3oc1oh3kh0 --src src.npy --wei wei.npy --dst out/y.npy
expect_error 1 out/y.npy "${RUN[@]}" --src src.npy --padding-mode mirror
expect_error 1 out/y.npy "${RUN[@]}" --src src.npy --cover-all --padding-mode reflect
expect_error 1 out/y.npy "${RUN[@]}" --src missing.npy
expect_error 1 out/y.npy "${RUN[@]}" --src dir.npy
if [ "$(id -u)" -ne 0 ]; then   # root reads mode-000 files
  expect_error 1 out/y.npy "${RUN[@]}" --src unreadable.npy
fi
expect_error 1 out/y.npy "${RUN[@]}" --src src_shape.npy
expect_error 1 out/y.npy "${RUN[@]}" --src src16.npy
expect_error 1 out/y.npy "${RUN[@]}" --src src.npy --dt f16
for bad in f64 fortran bigendian baddict shortdata huge negative truncheader text; do
  expect_error 1 out/y.npy "${RUN[@]}" --src "$bad.npy"
done
expect_error 1 out/y.npy run "$D" --src src.npy --wei wei5d.npy --dst out/y.npy
expect_error 1 out/y.npy run "$D" --src src.npy --wei wei.npy --wtag goihw --dst out/y.npy
expect_error 1 out/y.npy run "$D" --src src.npy --wei fortran.npy --dst out/y.npy
expect_error 1 out/y.npy "${RUN[@]}" --src src.npy --bia bia2.npy
expect_error 1 out/y.npy "${RUN[@]}" --src src.npy --bia missing.npy
expect_error 1 out/missing_dir/y.npy run "$D" --src src.npy --wei wei.npy --dst out/missing_dir/y.npy
expect_error 1 - run "$D" --src src.npy --wei wei.npy --dst out
expect_error 1 out/y.npy "${RUN[@]}" --src src.npy --target not-a-target
expect_error 1 - info mb1icXih3
expect_error 1 - info g3mb1ic10ih8oc9oh8kh3ph1
expect_error 1 - info --batch missing_shapes.txt
printf '%s\n' "$D" "mb1icXih3" >bad_shapes.txt
expect_error 1 - info --batch bad_shapes.txt
expect_error 1 out/missing_dir/k.stmt compile "$D" --emit stmt -o out/missing_dir/k.stmt

# An existing --dst survives a failed run untouched.
echo "keep me" >out/keep.npy
expect_error 1 - run "$D" --src shortdata.npy --wei wei.npy --dst out/keep.npy
checks=$((checks + 1))
if [ "$(cat out/keep.npy)" != "keep me" ]; then fail "a failed run changed an existing --dst"; fi
if [ -n "$(find out -name '.*.tmp-*')" ]; then fail "a failed run left temporary files in out/"; fi

# ---- info ---------------------------------------------------------------------------
checks=$((checks + 1))
run_convjit info --padding-mode reflect mb1ic3ih8iw9oc4oh8ow9kh3kw3ph1pw1dh0dw0nmy_layer
if [ "$rc" -ne 0 ]; then fail "info: exit $rc: $(cat "$WORK/stderr")"; fi
if [ "$(wc -l <"$WORK/stdout")" -ne 1 ]; then fail "info: expected one line of JSON"; fi
for field in '"n": 1' '"c_in": 3' '"h_in": 8' '"w_in": 9' '"c_out": 4' '"pad_bottom": 1' \
             '"dilation_h": 1' '"padding_mode": "reflect"' '"wtag": "oihw"' '"bias": false' \
             '"output_shape": \[1, 4, 8, 9\]' '"weight_shape": \[4, 3, 3, 3\]' '"name": "my_layer"' \
             '"flops": 15552' '"canonical_key": ' '"hash": "[0-9a-f]\{16\}"' '"descriptor": '; do
  if ! grep -q "$field" "$WORK/stdout"; then fail "info: no $field in $(cat "$WORK/stdout")"; fi
done
if [ -n "$PYTHON" ]; then
  if ! "$PYTHON" -c 'import json,sys; json.load(sys.stdin)' <"$WORK/stdout"; then
    fail "info: output is not JSON: $(cat "$WORK/stdout")"
  fi
fi
# The canonical descriptor parses back to the same key.
run_convjit info --padding-mode reflect mb1ic3ih8iw9oc4oh8ow9kh3kw3ph1pw1
key=$(sed 's/.*"canonical_key": "\([^"]*\)".*/\1/' "$WORK/stdout")
desc=$(sed 's/.*"descriptor": "\([^"]*\)".*/\1/' "$WORK/stdout")
run_convjit info --padding-mode reflect "$desc"
checks=$((checks + 1))
if ! grep -qF "\"canonical_key\": \"$key\"" "$WORK/stdout"; then
  fail "info: descriptor '$desc' does not parse back to key '$key': $(cat "$WORK/stdout")"
fi

# Transposed, grouped, 5-D weights, bias.
checks=$((checks + 1))
run_convjit info --deconv --wtag goihw --bias --dt f16 g2mb1ic4ih5oc6oh10kh3sh2ph1
if [ "$rc" -ne 0 ]; then fail "info --deconv: exit $rc: $(cat "$WORK/stderr")"; fi
for field in '"transposed": true' '"groups": 2' '"weight_shape": \[2, 3, 2, 3, 3\]' '"bias": true' \
             '"dtype": "f16"' '"output_padding_h": 1' '"output_shape": \[1, 6, 10, 10\]'; do
  if ! grep -q "$field" "$WORK/stdout"; then fail "info --deconv: no $field in $(cat "$WORK/stdout")"; fi
done

# --batch: one JSON object per problem line.
printf '# a comment\n%s\n\n--deconv mb1ic4ih5oc2oh10kh2sh2 # transposed\n' "$D" >shapes.txt
checks=$((checks + 1))
run_convjit info --batch shapes.txt
if [ "$rc" -ne 0 ]; then fail "info --batch: exit $rc: $(cat "$WORK/stderr")"; fi
if [ "$(wc -l <"$WORK/stdout")" -ne 2 ]; then fail "info --batch: expected 2 lines: $(cat "$WORK/stdout")"; fi
if [ -n "$PYTHON" ]; then
  if ! "$PYTHON" -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <"$WORK/stdout"; then
    fail "info --batch: a line is not JSON"
  fi
fi

# --schedules: every template, exactly one of them the default; an applicable one lists
# its knobs and defaults, which --schedule accepts back as 'NAME(defaults)'.
checks=$((checks + 1))
run_convjit info mb1ic8ih6oc16oh6kh3ph1 --schedules
if [ "$rc" -ne 0 ]; then fail "info --schedules: exit $rc: $(cat "$WORK/stderr")"; fi
if [ -n "$PYTHON" ]; then
  schedule=$("$PYTHON" -c '
import json, sys
j = json.load(sys.stdin)
spaces = j["schedules"]
defaults = [t for t in spaces if t["default"]]
assert len(defaults) == 1 and defaults[0]["applies"], defaults
names = [t["template"] for t in spaces]
assert "cpu_channel_blocked" in names and "gpu_tiled" in names, names
for t in spaces:
    if t["applies"]:
        knobs = {k["name"]: k["choices"] for k in t["knobs"]}
        for item in t["defaults"].split(","):
            name, value = item.split("=")
            assert int(value) in knobs[name], (t["template"], item, knobs)
    else:
        assert t["why_not"], t
# A template that is not the default, with its defaults.
other = next(t for t in spaces if t["applies"] and not t["default"] and t["template"] != "halide_autoscheduler")
print("%s(%s)" % (other["template"], other["defaults"]))
' <"$WORK/stdout") || fail "info --schedules: unexpected JSON: $(head -c 400 "$WORK/stdout")"
  checks=$((checks + 1))
  run_convjit compile mb1ic8ih6oc16oh6kh3ph1 --schedule "$schedule" --emit stmt -o out/listed.stmt
  if [ "$rc" -ne 0 ] || [ ! -s out/listed.stmt ]; then fail "compile --schedule '$schedule' (as info listed it): exit $rc: $(cat "$WORK/stderr")"; fi
fi
expect_error 2 - info "$D" --target host
expect_error 1 - info "$D" --schedules --target not-a-target

# ---- run ----------------------------------------------------------------------------
# 3x3 box filter over 0..8 with zero padding, plus a bias of 0.5.
checks=$((checks + 1))
echo "stale" >out/y.npy
run_convjit run "$D" --src src.npy --wei wei.npy --bia bia.npy --dst out/y.npy
if [ "$rc" -ne 0 ]; then fail "run: exit $rc: $(cat "$WORK/stderr")"; fi
expect_values out/y.npy "8.5 15.5 12.5 21.5 36.5 27.5 20.5 33.5 24.5"
if [ -n "$(find out -name '.*.tmp-*')" ]; then fail "run left temporary files in out/"; fi
checks=$((checks + 1))
if [ -n "$PYTHON" ] && "$PYTHON" -c 'import numpy' 2>/dev/null; then
  "$PYTHON" -c 'import numpy as np, sys; a = np.load(sys.argv[1]); assert a.dtype == np.float32 and a.shape == (1, 1, 3, 3), (a.dtype, a.shape)' out/y.npy ||
    fail "run: NumPy cannot load the output"
fi

# The same in float16 (the values are exact in it), through the --opt=value form.
checks=$((checks + 1))
run_convjit run --dt=f16 "$D" --src=src16.npy --wei=wei16.npy --dst=out/y16.npy
if [ "$rc" -ne 0 ]; then fail "run --dt f16: exit $rc: $(cat "$WORK/stderr")"; fi
expect_values out/y16.npy "8 15 12 21 36 27 20 33 24"

# ---- compile ------------------------------------------------------------------------
checks=$((checks + 1))
run_convjit compile "$D" --emit stmt -o out/k.stmt
if [ "$rc" -ne 0 ]; then fail "compile --emit stmt: exit $rc: $(cat "$WORK/stderr")"; fi
if [ ! -s out/k.stmt ]; then fail "compile --emit stmt: out/k.stmt is missing or empty"; fi
if [ -n "$(find out -name '.*.tmp-*')" ]; then fail "compile left temporary files in out/"; fi
# --schedule: a template by name (its defaults) or with every knob; the stmt names it.
for schedule in cpu_channel_vectorized 'gpu_cublas(columns_layout=1,threads=64)'; do
  checks=$((checks + 1))
  target=host; [[ $schedule == gpu_* ]] && target=host-cuda
  run_convjit compile "$D" --target "$target" --schedule "$schedule" --emit stmt -o out/s.stmt
  if [ "$rc" -ne 0 ]; then
    fail "compile --schedule $schedule: exit $rc: $(cat "$WORK/stderr")"
  elif [[ $schedule == gpu_cublas* ]] && ! grep -aq "convjit_conv_gemm" out/s.stmt; then
    fail "compile --schedule $schedule: the stmt does not call the cuBLAS stage"
  fi
done

# ---- cache --------------------------------------------------------------------------
# A cache of its own: one run stores one kernel (and the Halide runtime) in it.
CACHE="$WORK/cache"
expect_help cache list --help
expect_error 2 - cache
expect_error 2 - cache frobnicate
expect_error 2 - cache list --remove-bad --cache-dir "$CACHE"
expect_error 2 - cache stats extra --cache-dir "$CACHE"
expect_error 2 - cache verify --cache-dir
expect_error 1 - cache stats --cache-dir src.npy          # not a directory

# Nothing there yet: stats says so and creates nothing.
checks=$((checks + 1))
run_convjit cache stats --cache-dir "$CACHE"
if [ "$rc" -ne 0 ]; then fail "cache stats (no directory): exit $rc: $(cat "$WORK/stderr")"; fi
if ! grep -q "^entries: *0 " "$WORK/stdout"; then fail "cache stats (no directory): $(cat "$WORK/stdout")"; fi
if [ -e "$CACHE" ]; then fail "cache stats created $CACHE"; fi

checks=$((checks + 1))
CONVJIT_CACHE_DIR="$CACHE" "$CONVJIT" run "$D" --src src.npy --wei wei.npy --dst out/yc.npy >"$WORK/stdout" 2>"$WORK/stderr"
rc=$?
if [ "$rc" -ne 0 ]; then fail "run with a fresh cache: exit $rc: $(cat "$WORK/stderr")"; fi
expect_values out/yc.npy "8 15 12 21 36 27 20 33 24"

checks=$((checks + 1))
run_convjit cache stats --cache-dir "$CACHE"
if [ "$rc" -ne 0 ]; then fail "cache stats: exit $rc: $(cat "$WORK/stderr")"; fi
for line in "^directory: *$CACHE\$" '^enabled: *yes$' '^entries: *2 (1 kernel, 1 runtime)$' '^total: *[1-9][0-9]* bytes' \
            '^max: *[1-9][0-9]* bytes'; do
  if ! grep -q "$line" "$WORK/stdout"; then fail "cache stats: no line $line in $(cat "$WORK/stdout")"; fi
done

checks=$((checks + 1))
run_convjit cache list --cache-dir "$CACHE"
if [ "$rc" -ne 0 ]; then fail "cache list: exit $rc: $(cat "$WORK/stderr")"; fi
if ! head -n 1 "$WORK/stdout" | grep -q "^KIND  *SIZE  *LAST USE  *TARGET  *SCHEDULE  *SPEC  *FILE$"; then
  fail "cache list: no header line: $(cat "$WORK/stdout")"
fi
if [ "$(grep -c '^kernel ' "$WORK/stdout")" -ne 1 ] || [ "$(wc -l <"$WORK/stdout")" -ne 3 ]; then
  fail "cache list: expected a header, one kernel and the runtime: $(cat "$WORK/stdout")"
fi
kernel_line=$(grep '^kernel ' "$WORK/stdout")
entry=$(echo "$kernel_line" | awk '{print $NF}')
for field in ' [1-9][0-9]* ' ' [0-9]\{4\}-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] ' ' x86-64-linux' \
             'c_in=1 h_in=3 w_in=3 c_out=1 kh=3 kw=3 pad=1,1,1,1'; do
  if ! echo "$kernel_line" | grep -q -- "$field"; then fail "cache list: no '$field' in: $kernel_line"; fi
done
if ! echo "$entry" | grep -q '^[0-9a-f]\{16\}\.kernel$' || [ ! -f "$CACHE/$entry" ]; then
  fail "cache list: '$entry' is not an entry file of $CACHE"
fi

checks=$((checks + 1))
run_convjit cache list --json --cache-dir "$CACHE"
if [ "$rc" -ne 0 ]; then fail "cache list --json: exit $rc: $(cat "$WORK/stderr")"; fi
if [ "$(wc -l <"$WORK/stdout")" -ne 2 ]; then fail "cache list --json: expected 2 lines: $(cat "$WORK/stdout")"; fi
if ! grep -q "\"file\": \"$entry\".*\"kind\": \"kernel\".*\"spec\": \"conv2d" "$WORK/stdout"; then
  fail "cache list --json: no kernel entry $entry in $(cat "$WORK/stdout")"
fi
if [ -n "$PYTHON" ]; then
  if ! "$PYTHON" -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <"$WORK/stdout"; then
    fail "cache list --json: a line is not JSON: $(cat "$WORK/stdout")"
  fi
fi

# verify_cache RC SUMMARY [ARGS...]: `convjit cache verify` exits RC and ends with SUMMARY.
verify_cache() {
  local code=$1 summary=$2
  shift 2
  checks=$((checks + 1))
  run_convjit cache verify --cache-dir "$CACHE" "$@"
  if [ "$rc" -ne "$code" ]; then fail "cache verify $*: exit $rc, expected $code: $(cat "$WORK/stderr")"; fi
  if [ "$(tail -n 1 "$WORK/stdout")" != "$summary" ]; then
    fail "cache verify $*: expected '$summary' last: $(cat "$WORK/stdout")"
  fi
}

# flip_byte FILE: inverts one bit of the byte in the middle of FILE.
flip_byte() {
  local size offset byte
  size=$(wc -c <"$1")
  offset=$((size / 2))
  byte=$(od -An -tu1 -j "$offset" -N 1 "$1" | tr -d ' ')
  # shellcheck disable=SC2059
  printf "\\$(printf '%03o' $((byte ^ 1)))" | dd of="$1" bs=1 seek="$offset" conv=notrunc 2>/dev/null
}

verify_cache 0 "2 entries, 0 bad"
if [ -s "$WORK/stderr" ]; then fail "cache verify: wrote to stderr: $(cat "$WORK/stderr")"; fi

flip_byte "$CACHE/$entry"
verify_cache 1 "2 entries, 1 bad"
if ! grep -q "$entry: " "$WORK/stdout"; then fail "cache verify: does not name $entry: $(cat "$WORK/stdout")"; fi
if [ "$(wc -l <"$WORK/stderr")" -ne 1 ] || ! grep -q "^convjit: error: " "$WORK/stderr"; then
  fail "cache verify: expected one error line: $(cat "$WORK/stderr")"
fi
verify_cache 0 "2 entries, 1 bad, removed" --remove-bad
if [ -e "$CACHE/$entry" ]; then fail "cache verify --remove-bad left $entry"; fi
verify_cache 0 "1 entry, 0 bad"

# A damaged entry never reaches a run: it is rebuilt, with a warning.
checks=$((checks + 1))
CONVJIT_CACHE_DIR="$CACHE" "$CONVJIT" run "$D" --src src.npy --wei wei.npy --dst out/yc.npy >"$WORK/stdout" 2>"$WORK/stderr"
if [ ! -f "$CACHE/$entry" ]; then fail "run did not store $entry again"; fi
flip_byte "$CACHE/$entry"
rm out/yc.npy
CONVJIT_CACHE_DIR="$CACHE" "$CONVJIT" run "$D" --src src.npy --wei wei.npy --dst out/yc.npy >"$WORK/stdout" 2>"$WORK/stderr"
rc=$?
if [ "$rc" -ne 0 ]; then fail "run with a damaged cache entry: exit $rc: $(cat "$WORK/stderr")"; fi
if ! grep -q "^convjit: warning: .*$entry" "$WORK/stderr"; then fail "run with a damaged entry: no warning: $(cat "$WORK/stderr")"; fi
expect_values out/yc.npy "8 15 12 21 36 27 20 33 24"
verify_cache 0 "2 entries, 0 bad"

checks=$((checks + 1))
run_convjit cache clear --cache-dir "$CACHE"
if [ "$rc" -ne 0 ]; then fail "cache clear: exit $rc: $(cat "$WORK/stderr")"; fi
if ! grep -q "^removed 2 entries" "$WORK/stdout"; then fail "cache clear: $(cat "$WORK/stdout")"; fi
if [ -n "$(ls -A "$CACHE")" ]; then fail "cache clear left: $(ls -A "$CACHE")"; fi
run_convjit cache list --cache-dir "$CACHE"
if [ "$(wc -l <"$WORK/stdout")" -ne 1 ]; then fail "cache list after clear: $(cat "$WORK/stdout")"; fi
verify_cache 0 "0 entries, 0 bad"

# The default directory comes from the environment.
checks=$((checks + 1))
CONVJIT_CACHE_DIR="$CACHE" "$CONVJIT" cache stats >"$WORK/stdout" 2>"$WORK/stderr"
if ! grep -q "^directory: *$CACHE\$" "$WORK/stdout"; then fail "cache stats ignores CONVJIT_CACHE_DIR: $(cat "$WORK/stdout")"; fi

# ---- convjit tune and convjit bench: bad options name the value and the rule ----------
# expect_error_naming CODE PATTERN ARGS...: as expect_error, and the message holds PATTERN.
expect_error_naming() {
  local code=$1 pattern=$2
  shift 2
  expect_error "$code" - "$@"
  checks=$((checks + 1))
  if ! grep -q -- "$pattern" "$WORK/stderr"; then fail "convjit $*: error does not name '$pattern': $(cat "$WORK/stderr")"; fi
}
DB="$WORK/tuning/t.sqlite"
expect_error_naming 2 "--budget 'abc'" tune "$D" --budget abc --db "$DB"
expect_error_naming 2 "--budget 'abc'" tune "$D" --budget=abc --db "$DB"
expect_error_naming 2 "missing required option --budget" tune "$D" --db "$DB"
expect_error_naming 2 "missing DESCRIPTOR or --batch" tune --budget 1 --db "$DB"
expect_error_naming 1 "no-such.jsonl" tune --import "$WORK/no-such.jsonl" --db "$DB"
expect_error_naming 2 "--threads '0'" bench "$D" --threads 0 --no-onednn
expect_error_naming 2 "--threads '1,x'" bench "$D" --threads 1,x --no-onednn
# CUDA targets: bad combinations name the rule; without a GPU, running says what is missing.
expect_error_naming 2 "--threads does not apply to a CUDA target" bench "$D" --target host-cuda --threads 1
expect_error_naming 2 "--buffers cold: only for CPU targets" bench "$D" --target host-cuda --buffers cold
expect_error_naming 1 "the only GPU API supported is CUDA" compile "$D" --target host-opencl --emit ptx -o "$WORK/k.ptx"
expect_error_naming 1 "PTX needs a CUDA target" compile "$D" --emit ptx -o "$WORK/k.ptx"
# compile --schedule: the template, its applicability and its knobs are checked.
expect_error_naming 1 "unknown schedule template 'nope'" compile "$D" --schedule nope --emit stmt -o "$WORK/s.stmt"
expect_error_naming 1 "does not apply" compile "$D" --schedule gpu_tiled --emit stmt -o "$WORK/s.stmt"
expect_error_naming 1 "columns_layout=7 is not one of the values" compile "$D" --target host-cuda \
  --schedule 'gpu_cublas(columns_layout=7,threads=64)' --emit stmt -o "$WORK/s.stmt"
expect_error_naming 1 "expected NAME or NAME(knob=value,...)" compile "$D" --schedule 'cpu_channel_vectorized(' --emit stmt -o "$WORK/s.stmt"
if [ ! -e /dev/nvidia0 ]; then
  expect_error_naming 1 "no CUDA device" bench "$D" --target host-cuda --repeat 1
  # tune prints its progress lines on stderr first; its last line is the error.
  checks=$((checks + 1))
  run_convjit tune "$D" --target host-cuda --budget 1 --db "$DB"
  if [ "$rc" -ne 1 ] || ! tail -n 1 "$WORK/stderr" | grep -q "^convjit: error: no CUDA device"; then
    fail "convjit tune --target host-cuda without a GPU: exit $rc, stderr: $(cat "$WORK/stderr")"
  fi
fi
expect_error_naming 2 "--repeat '0'" bench "$D" --repeat 0 --no-onednn
expect_error_naming 2 "missing DESCRIPTOR or --batch" bench --no-onednn
expect_error_naming 2 "--weights 'bogus'" bench "$D" --weights bogus --no-onednn
# --weights: prepared (default) times a layer with 1 MiB of weights in blocks of 16
# output channels with oihw16o weights, given with the problem's own layout; the JSON
# says which.
B="--threads 1 --repeat 1 --no-onednn --json"
expect_output '"wtag": "oihw16o"' bench mb1ic256ih3oc1024oh3kh1ph0 --weights prepared $B
expect_output '"wtag": "oihw"' bench mb1ic256ih3oc1024oh3kh1ph0 --weights given $B
# --buffers cold: runs rotate over several copies of the layer (the JSON counts them);
# warm reuses one.
expect_output '"buffer_sets": 1,' bench mb1ic8ih8oc8oh8kh3ph1n --buffers warm $B
expect_output '"buffer_sets": 8,' bench mb1ic8ih8oc8oh8kh3ph1n --buffers cold $B
expect_error_naming 2 "--buffers 'hot'" bench "$D" --buffers hot --no-onednn
expect_help tune --help
expect_help bench --help
expect_help aot --help

chmod 600 unreadable.npy
if [ "$failures" -ne 0 ]; then
  echo "cli_test: $failures of $checks checks failed" >&2
  exit 1
fi
echo "cli_test: all $checks checks passed"
