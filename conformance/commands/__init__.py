"""One module per `chatconf` subcommand, each exposing `main(args) -> exit code`."""
