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

# Validators from PyPI in a virtual environment of the project's own (target/tools), put on the
# PATH: kubernetes-validate (the Kubernetes manifests against the API schema) and
# openapi-spec-validator (the gateway's OpenAPI document).
ensure_validators() {
  local venv="target/tools/venv"
  if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/openapi-spec-validator" ]; then
    echo ">> installing kubernetes-validate and openapi-spec-validator (PyPI) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "kubernetes-validate==1.37.0" "openapi-spec-validator==0.7.1"
  fi
  PATH="$PWD/$venv/bin:$PATH"
  export PATH
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

# Packages the build, the test suite and the demo need: a real mosquitto broker; ffmpeg (camsim
# encodes its H.264 clip with it, and it is the camera benchmark's baseline); FFmpeg's libraries
# with their headers and clang (the gateway decodes keyframes for picture checks and snapshots
# through ffmpeg-next, whose bindings are generated at build time); GStreamer's RTSP server with
# its Python bindings and x264 (the third-party camera of the interop test); openpyxl (the
# assessment workbook is read back); prometheus for promtool (the shipped alert rules are checked
# and unit-tested); util-linux for unshare/nsenter (a tmpfs of the gateway's own in the disk
# tests and the chaos run); systemd for systemd-analyze (the shipped unit is verified and scored);
# python3-venv for the validators' environment; chromium, chromium-driver and a CJK font
# (fonts-wqy-microhei) for the console's browser test and its screenshots; sip-tester (SIPp) for
# the GB/T 28181 interop scenarios.
BUILD_PACKAGES=(build-essential pkg-config ca-certificates curl openssl mosquitto mosquitto-clients
  ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavfilter-dev
  libavdevice-dev clang libclang-dev python3 python3-gi gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  python3-openpyxl python3-venv prometheus util-linux systemd
  chromium chromium-driver fonts-wqy-microhei sip-tester)
