# Sourced by scripts/run and scripts/test: find Python 3.11 and make sure .venv exists with the given requirements.
# Usage: ensure_venv requirements.txt|requirements-dev.txt
find_python() {
    for candidate in "${PYTHON:-}" python3.11 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

ensure_venv() {
    local requirements="$1" python stamp
    if [ ! -x .venv/bin/python ]; then
        python=$(find_python)
        "$python" -m venv .venv
    fi
    # Reinstall only when the requirements changed since the last install.
    stamp=".venv/.installed-$(basename "$requirements" .txt)"
    if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
        # (this machine's pip configuration warns about absent local mirrors; those lines are noise)
        .venv/bin/python -m pip install --disable-pip-version-check -q -r "$requirements" 2>&1 \
            | { grep -v "^WARNING: Location .* is ignored" || true; }
        touch "$stamp"
    fi
}
