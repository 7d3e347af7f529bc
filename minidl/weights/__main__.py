"""Command line for weight files.

    python -m minidl.weights fetch vgg19 [--top] [--dir DIR] [--base-url URL] [--force]
    python -m minidl.weights convert SRC DEST [--top | --no-top]
    python -m minidl.weights info FILE
    python -m minidl.weights where

Expected failures (network, checksum, wrong file) print one ``error:`` line and exit with status 1; a
traceback means a bug.
"""
import argparse
import sys

from ..fileio import DownloadError
from . import paths
from .convert import convert
from .fetch import ARCHS, fetch
from .format import WeightsFormatError, describe


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minidl.weights", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fetch", help="download, verify and convert pretrained weights")
    p.add_argument("arch", choices=ARCHS)
    p.add_argument("--top", action="store_true", help="include the classifier (fc1, fc2, predictions; ~550 MB)")
    p.add_argument("--dir", default=None, help=f"destination folder (default: {paths.weights_dir()})")
    p.add_argument("--base-url", default=None, help="download from this folder URL instead of Keras's")
    p.add_argument("--force", action="store_true", help="download again even if the file exists")

    p = sub.add_parser("convert", help="convert a Keras .h5 or torchvision .pth VGG19 file to minidl's format")
    p.add_argument("src")
    p.add_argument("dest")
    top = p.add_mutually_exclusive_group()
    top.add_argument("--top", dest="include_top", action="store_true", default=None,
                     help="require the classifier layers")
    top.add_argument("--no-top", dest="include_top", action="store_false", help="drop the classifier layers")

    p = sub.add_parser("info", help="check a minidl weight file and list its attributes and layers")
    p.add_argument("file")

    sub.add_parser("where", help="show where weight files are searched for and stored")

    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            fetch(args.arch, include_top=args.top, dest_dir=args.dir, base_url=args.base_url, force=args.force)
        elif args.command == "convert":
            dest = convert(args.src, args.dest, include_top=args.include_top)
            print(f"wrote {dest}")
        elif args.command == "info":
            print(describe(args.file))
        elif args.command == "where":
            print("search path:", *(f"  {d}" for d in paths.search_dirs()), sep="\n")
            print(f"fetch writes to: {paths.weights_dir()}")
    except (DownloadError, WeightsFormatError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
