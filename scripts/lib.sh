# Shared helpers for the scripts in this folder (sourced, not run).

# Installs the Debian packages given that are missing (apt-get, as root or through sudo).
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo ">> installing missing packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Fails with a clear message when no suitable Rust toolchain is on the PATH.
ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found. Install Rust 1.90 or newer (rustup.rs), then run this again." >&2
    exit 1
  fi
}

# Packages the build, the test suite (a real mosquitto broker) and the demo need.
BUILD_PACKAGES=(build-essential pkg-config ca-certificates curl openssl mosquitto mosquitto-clients)
