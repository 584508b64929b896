# Shared by scripts/*: finding Python, making virtualenvs, installing servers.

install_server_packages() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
    command -v memcached >/dev/null || missing+=(memcached)
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "Missing server packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
        return 1
    fi
    echo "== apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# find_python 3.11 -> path of a working interpreter of that version, or fail.
find_python() {
    local version=$1 candidate prefix
    for candidate in "python$version" python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" 2>/dev/null; then
            "$candidate" -c "import sys; print(sys.executable)"
            return 0
        fi
    done
    if command -v pyenv >/dev/null; then
        for prefix in $(pyenv versions --bare 2>/dev/null | grep -E "^${version//./\\.}(\.[0-9]+)?$" | sort -rV); do
            candidate="$(pyenv root)/versions/$prefix/bin/python"
            if [ -x "$candidate" ] && "$candidate" -c "pass" 2>/dev/null; then
                echo "$candidate"
                return 0
            fi
        done
    fi
    return 1
}

# make_venv DIR PYTHON QUART_REQUIREMENT: create DIR and install the project
# with its test extras; skipped when nothing it depends on changed.
make_venv() {
    local dir=$1 python=$2 quart=$3
    local stamp="$dir/.installed" want
    want="$("$python" --version) $quart $(cat pyproject.toml docs/requirements.txt 2>/dev/null | sha256sum || true)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    echo "== setting up $dir ($("$python" --version), $quart)"
    # Reinstalled in place: removing the folder would pull it from under a
    # running demo or test.
    [ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    local extra=()
    [ -f docs/requirements.txt ] && extra+=(-r docs/requirements.txt)
    "$dir/bin/python" -m pip install -q -e ".[test]" "$quart" "${extra[@]}" 2>&1 | grep -v "^WARNING: Location" || true
    "$dir/bin/python" -c "import quart_session" # fail here if the install failed
    echo "$want" >"$stamp"
}

# How many pytest processes run the suite side by side (pytest-xdist). The
# tests mostly wait (on expiry, timeouts, servers), so a 2-core machine runs
# four at once in well under half the time of one; each process starts its own
# servers on free ports. TEST_WORKERS=0 runs everything in one process. The
# soak tests run after, alone.
TEST_WORKERS=${TEST_WORKERS:-4}

# run_checks DIR [pytest args]: lint, type-check and test with DIR's Python.
run_checks() {
    local dir=$1
    shift
    echo "== $("$dir/bin/python" --version), Quart $("$dir/bin/python" -c 'import importlib.metadata as m; print(m.version("quart"))')"
    "$dir/bin/ruff" check src tests
    "$dir/bin/mypy"
    "$dir/bin/python" -m pytest -n "$TEST_WORKERS" -m "not soak" "$@"
    run_soak_tests "$dir" "$@"
}

# run_soak_tests DIR [pytest args]: the load runs whose checks depend on
# scheduling (marker "soak": time limits, command counts), alone: beside three
# other test processes on two cores they would measure the machine, not the
# library. Selecting none (e.g. with -k) is fine.
run_soak_tests() {
    local dir=$1 status=0
    shift
    "$dir/bin/python" -m pytest -m soak "$@" || status=$?
    [ "$status" -eq 0 ] || [ "$status" -eq 5 ]
}

# The suites that exercise quart_session's use of Quart and need no browser;
# the stores' own suites do not depend on the Quart version.
QUART_COMPAT_TESTS=(
    tests/stores/test_behaviour_local.py
    tests/stores/test_concurrency_local.py
    tests/test_config.py
    tests/test_signals.py
    tests/test_legacy_ids.py
    tests/test_websocket_cancel.py
    tests/test_quart_compat.py
    tests/test_cookie_prefix.py
    tests/test_cli.py
    tests/test_serializers.py
)

# run_quart_compat_checks DIR [pytest args]: those suites with DIR's Python and
# Quart (no ruff or mypy: the code is checked once, against the newest Quart).
run_quart_compat_checks() {
    local dir=$1
    shift
    echo "== $("$dir/bin/python" --version), Quart $("$dir/bin/python" -c 'import importlib.metadata as m; print(m.version("quart"))'): the Quart-facing suites"
    "$dir/bin/python" -m pytest "${QUART_COMPAT_TESTS[@]}" "$@"
}

# check_package DIR: build the sdist and the wheel with DIR's Python (the wheel
# from the sdist, as pip builds it), check their metadata, install the wheel with
# every extra into a fresh virtualenv and import the package from there. A file
# the wheel leaves out (a store module, py.typed) or a dependency it forgets to
# declare fails here rather than for users. .venv-wheel is made anew each run;
# pip's cache keeps that quick.
check_package() {
    local dir=$1 work=.venv-wheel
    echo "== the package: sdist and wheel, twine check, the wheel in a fresh virtualenv"
    rm -rf "$work"
    mkdir "$work"
    "$dir/bin/python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || {
        cat "$work/build.log" >&2
        return 1
    }
    "$dir/bin/twine" check --strict "$work"/dist/*
    local wheels=("$work"/dist/*.whl)
    "$dir/bin/python" -m venv "$work/venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$work/venv/bin/python" -m pip install -q "${wheels[0]}[all]" \
        >"$work/pip.log" 2>&1 || {
        cat "$work/pip.log" >&2
        return 1
    }
    # -I: neither the working directory nor PYTHONPATH may supply the package.
    "$work/venv/bin/python" -I - "$PWD/src/quart_session" <<'PY'
import importlib
import importlib.metadata
import importlib.resources
import pkgutil
import sys
from pathlib import Path

source = Path(sys.argv[1])
package = importlib.import_module("quart_session")
if not str(package.__file__).startswith(sys.prefix):
    sys.exit(f"quart_session was imported from {package.__file__}, not from the wheel")
# Every file of the source tree is installed: walking the installed package alone
# would never notice a module the wheel left out.
installed = {
    str(file) for file in importlib.metadata.files("quart-session") or ()
    if file.parts[0] == "quart_session" and file.suffix != ".pyc"
}
expected = {
    str(file.relative_to(source.parent)) for file in source.rglob("*")
    if file.is_file() and "__pycache__" not in file.parts
}
if missing := sorted(expected - installed):
    sys.exit(f"files missing from the wheel: {', '.join(missing)}")
if not importlib.resources.files("quart_session").joinpath("py.typed").is_file():
    sys.exit("py.typed is not in the installed package")
modules = ["quart_session"]
for module in pkgutil.walk_packages(package.__path__, "quart_session."):
    modules.append(module.name)
    importlib.import_module(module.name)  # every store module, with its extra's client
print(f"   {len(modules)} modules and py.typed import from the installed wheel")
PY
}
