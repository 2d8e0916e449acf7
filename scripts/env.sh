# Shared environment for the scripts: one build cache outside the clone (reused by CI runs and by
# the main job, so the tests and the demo share every compiled dependency), and a persistent Mesa
# shader cache (lavapipe compiles each wgpu kernel once: ~90 s cold, ~3 s warm).
export LEOCLR_CACHE="${LEOCLR_CACHE:-$HOME/.cache/leoclr}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LEOCLR_CACHE/target}"
export MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-$LEOCLR_CACHE/mesa}"
export CUBECL_AUTOTUNE_LEVEL="${CUBECL_AUTOTUNE_LEVEL:-minimal}"
# wgpu/Mesa complain without it; any private directory will do.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  export XDG_RUNTIME_DIR="$LEOCLR_CACHE/xdg"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi
mkdir -p "$CARGO_TARGET_DIR" "$MESA_SHADER_CACHE_DIR"

# Installs Debian packages that are missing (root or sudo needed only when something is missing).
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}
