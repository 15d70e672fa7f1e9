"""``python -m bot``: the same as the ``minpcode`` console script."""

from bot.cli import main

if __name__ == "__main__":
    main()
