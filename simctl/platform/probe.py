"""``python -m simctl.platform.probe URL``: exit 0 when URL answers 200 (container healthchecks)."""

import sys
import urllib.request


def main() -> int:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as resp:
            return 0 if resp.status == 200 else 1
    except Exception:  # any failure is simply "unhealthy"
        return 1


if __name__ == "__main__":
    sys.exit(main())
