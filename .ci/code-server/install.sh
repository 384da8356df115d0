#!/usr/bin/env bash
# Install what the end-to-end tests need: Debian's chromium, ripgrep and build
# tools, code-server 4.100.3 under CACHE_DIR, and playwright-core in tests/e2e.
#
# Usage: .ci/code-server/install.sh CACHE_DIR
#
# Needs only the Debian and npm registries. The code-server npm package's own
# install script downloads ripgrep from GitHub, so this script installs it with
# --ignore-scripts and runs the same steps itself: it builds the native modules
# against the machine's Node.js headers and points @vscode/ripgrep at Debian's rg. It is idempotent: a
# finished install is marked by CACHE_DIR/code-server-VERSION/.installed and is
# only verified on the next run. Needs root for apt-get and unshare.
set -euo pipefail

readonly CODE_SERVER_VERSION=4.100.3
# code-server 4.100.3 declares engines.node "20" and its postinstall rejects any
# other major version, so the native modules below are built for Node.js 20.
readonly NODE_MAJOR=20
readonly DEBIAN_PACKAGES=(chromium ripgrep libkrb5-dev build-essential python3 fonts-dejavu-core)
# VS Code's modules that ship C++ sources with no prebuilt binary for Linux.
# code-server's own argon2 is built separately below. @parcel/watcher is not
# listed because npm installs its prebuilt @parcel/watcher-linux-x64-glibc.
readonly VSCODE_NATIVE_MODULES=(kerberos @vscode/spdlog @vscode/deviceid native-watchdog node-pty)

if [[ $# -ne 1 || -z $1 ]]; then
  echo "usage: $0 CACHE_DIR" >&2
  exit 2
fi

repo_root=$(cd "$(dirname "$0")/../.." && pwd)
cache_dir=$(realpath -m "$1")
install_dir="$cache_dir/code-server-$CODE_SERVER_VERSION"
log_dir="$cache_dir/logs"
mkdir -p "$log_dir" "$cache_dir/bin"

script_start=$SECONDS
step_name=""
step_log=""

# Keep the caller's stderr on fd 3, because steps run with their output in a log.
exec 3>&2

# Print which step failed and the end of its log. errtrace makes this run for a
# failing command inside a function too, and the subshell check prints it once.
on_error() {
  local status=$1 line=$2
  if ((BASH_SUBSHELL > 0)); then
    return
  fi
  if [[ -n $step_name ]]; then
    echo "install.sh: step '$step_name' failed with exit status $status; last lines of $step_log:" >&3
    tail -n 40 "$step_log" >&3
  else
    echo "install.sh: failed with exit status $status at line $line" >&3
  fi
}
set -E
trap 'on_error $? $LINENO' ERR

# Run "$@" with its output in $log_dir/NAME.log, and print one line with its
# duration.
run_step() {
  step_name=$1
  shift
  step_log="$log_dir/$step_name.log"
  local start=$SECONDS
  "$@" >"$step_log" 2>&1
  printf '  %-28s %4d s\n' "$step_name" $((SECONDS - start))
  step_name=""
}

check_prerequisites() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "install.sh: must run as root (it runs apt-get and unshare)" >&2
    exit 1
  fi
  local node_version
  node_version=$(node --version 2>/dev/null || true)
  if [[ $node_version != v$NODE_MAJOR.* ]]; then
    echo "install.sh: code-server $CODE_SERVER_VERSION needs Node.js $NODE_MAJOR, found '${node_version:-no node}'" >&2
    exit 1
  fi
}

install_debian_packages() {
  local missing=() package
  for package in "${DEBIAN_PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null) != installed ]]; then
      missing+=("$package")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "  Debian packages already installed: ${DEBIAN_PACKAGES[*]}"
    return
  fi
  echo "  installing Debian packages: ${missing[*]}"
  run_step apt-get-update apt-get update -qq
  run_step apt-get-install env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Print the directory that contains include/node/node.h for the running node, so
# node-gyp builds against it instead of downloading headers.
node_headers_dir() {
  local prefix
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  if [[ ! -f $prefix/include/node/node.h ]]; then
    echo "install.sh: Node.js headers not found at $prefix/include/node; node-gyp would try to download them" >&2
    return 1
  fi
  echo "$prefix"
}

npm_install_offline_scripts() {
  npm install --ignore-scripts --omit=dev --no-audit --no-fund --loglevel=error
}

npm_install_code_server() {
  (cd "$install_dir" && npm_install_offline_scripts)
}

# The steps of code-server's postinstall.sh, minus the ripgrep download.
install_vscode_dependencies() {
  local vscode_dir=$install_dir/node_modules/code-server/lib/vscode
  (cd "$vscode_dir" && npm_install_offline_scripts)
  (cd "$vscode_dir/extensions" && npm_install_offline_scripts)
  # Trims the TypeScript copy used by the built-in extensions, as upstream does.
  (cd "$vscode_dir/extensions" && node postinstall.mjs)

  ln -sfn node_modules "$vscode_dir/node_modules.asar"
  ln -sfn code-linux.sh "$vscode_dir/bin/remote-cli/code-server"
  ln -sfn browser-linux.sh "$vscode_dir/bin/helpers/browser.sh"

  local ripgrep_bin=$vscode_dir/node_modules/@vscode/ripgrep/bin
  mkdir -p "$ripgrep_bin"
  ln -sfn "$(command -v rg)" "$ripgrep_bin/rg"
}

build_native_modules() {
  local nodedir node_gyp module
  nodedir=$(node_headers_dir)
  node_gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
  local modules_dir=$install_dir/node_modules
  local vscode_modules=$modules_dir/code-server/lib/vscode/node_modules

  # argon2 loads its binary through node-pre-gyp from lib/binding/napi-v3, so it
  # is built by node-pre-gyp, which calls the node-gyp bundled with npm.
  (cd "$modules_dir/argon2" &&
    PATH="$(dirname "$node_gyp"):$PATH" node ../@mapbox/node-pre-gyp/bin/node-pre-gyp \
      rebuild --build-from-source --nodedir="$nodedir")

  for module in "${VSCODE_NATIVE_MODULES[@]}"; do
    echo "== $module"
    (cd "$vscode_modules/$module" && node "$node_gyp" rebuild --nodedir="$nodedir")
  done
}

install_code_server() {
  if [[ -f $install_dir/.installed ]]; then
    echo "  code-server $CODE_SERVER_VERSION already installed in $install_dir"
    return
  fi
  rm -rf "$install_dir"
  mkdir -p "$install_dir"
  printf '{"private": true, "dependencies": {"code-server": "%s"}}\n' "$CODE_SERVER_VERSION" \
    >"$install_dir/package.json"

  run_step npm-install-code-server npm_install_code_server
  run_step npm-install-vscode install_vscode_dependencies
  run_step build-native-modules build_native_modules
  echo "$CODE_SERVER_VERSION" >"$install_dir/.installed"
}

install_playwright() {
  local e2e_dir=$repo_root/tests/e2e
  local wanted installed
  wanted=$(node -p "require('$e2e_dir/package.json').dependencies['playwright-core']")
  installed=$(node -p "require('$e2e_dir/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
  if [[ $installed == "$wanted" ]]; then
    echo "  playwright-core $wanted already installed in $e2e_dir"
    return
  fi
  run_step npm-ci-playwright npm ci --prefix "$e2e_dir" --no-audit --no-fund --loglevel=error
}

verify_code_server() {
  local version_output
  # code-server writes logs under ~/.local/share/code-server even for
  # --version, so it gets a HOME of its own.
  local scratch_home=$cache_dir/verify-home
  mkdir -p "$scratch_home"
  version_output=$(HOME=$scratch_home "$cache_dir/bin/code-server" --config /dev/null --version)
  if [[ $version_output != "$CODE_SERVER_VERSION "* ]]; then
    echo "install.sh: code-server --version printed '$version_output', expected $CODE_SERVER_VERSION" >&2
    exit 1
  fi
  echo "  code-server --version: $version_output"
  # A private network namespace with only loopback up, so the check can reach
  # nothing outside this machine.
  run_step verify-workbench unshare --net sh -c \
    'ip link set lo up && exec node "$1" "$2"' sh \
    "$repo_root/.ci/code-server/verify.mjs" "$cache_dir/bin/code-server"
  sed 's/^/  /' "$log_dir/verify-workbench.log"
}

check_prerequisites
echo "install.sh: installing into $cache_dir"
install_debian_packages
install_code_server
ln -sfn "../code-server-$CODE_SERVER_VERSION/node_modules/.bin/code-server" "$cache_dir/bin/code-server"
install_playwright
verify_code_server
echo "install.sh: done in $((SECONDS - script_start)) s; code-server uses $(du -sh "$install_dir" | cut -f1)"
echo "install.sh: code-server is $cache_dir/bin/code-server"
