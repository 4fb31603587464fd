"""python -m pyconc tour -- run the tutorial programs on pyconc and the stdlib, with timings."""
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m pyconc tour [--repeat N] [--lines N] [NAME ...]\n\n"
              "  tour   run the tutorial programs on pyconc and on the stdlib, with timings")
        return 0 if argv else 2
    if argv[0] == "tour":
        from .tour import main as tour_main
        return tour_main(argv[1:])
    print(f"python -m pyconc: unknown command {argv[0]!r} (try 'tour')", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
