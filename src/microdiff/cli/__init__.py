from .main import build_parser, main
