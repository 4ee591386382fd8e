# Sourced by run.sh and bench/django_checker.sh: the test environments.
# venv_for NAME prints the path of the virtual environment for
# requirements/NAME.txt under $MF_DJANGO_VENV (default tests/django/.venv),
# creating it, or rebuilding it when the requirements file changed.
MF_DJANGO_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

venv_for() {
    local req="$MF_DJANGO_HERE/requirements/$1.txt" venv="${MF_DJANGO_VENV:-$MF_DJANGO_HERE/.venv}/$1"
    [ -f "$req" ] || { echo "FAIL: no $req" >&2; return 1; }
    if ! cmp -s "$req" "$venv/requirements.installed" 2>/dev/null; then
        echo "django: creating the virtual environment $venv" >&2
        rm -rf "$venv"
        "${PYTHON:-python3}" -m venv "$venv" >&2 \
            || { echo "FAIL: '${PYTHON:-python3} -m venv' failed (on Debian: apt-get install python3-venv)" >&2; return 1; }
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
        cp "$req" "$venv/requirements.installed"
    fi
    echo "$venv"
}
